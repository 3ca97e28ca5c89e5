"""The boundaries the design depends on, checked on the code as it is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_services_are_independent_and_the_library_imports_none() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    configured = (ROOT / "pyproject.toml").read_text().count("[[tool.importlinter.contracts]]")
    assert f"Contracts: {configured} kept, 0 broken." in result.stdout


def test_each_services_rules_contract_names_every_module_of_the_service() -> None:
    """A module added to a service is forbidden to its rules too: the contract lists every one,
    so it cannot silently weaken."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = {tuple(c["source_modules"]): c for c in config["tool"]["importlinter"]["contracts"]
                 if c["type"] == "forbidden"}
    for package in sorted(p.parent.name for p in ROOT.glob("services/*/src/*/rules")):
        contract = contracts[(f"{package}.rules", f"{package}.errors")]
        modules = {f"{package}.{m.stem}" for m in (ROOT / "services").glob(f"*/src/{package}/*.py")
                   if m.stem not in ("__init__", "__main__", "errors")}
        assert modules, package
        missing = modules - set(contract["forbidden_modules"])
        assert not missing, f"{package}: add {sorted(missing)} to its rules contract"
