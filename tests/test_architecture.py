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


def test_the_contracts_between_services_name_every_service() -> None:
    """A service added under services/ is held to every boundary at once: independent of the
    others, never imported by the library or the CLI, running on the library alone."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    packages = {p.parent.name for p in ROOT.glob("services/*/src/*/__init__.py")}
    assert packages, "no service packages found"
    assert packages <= set(config["root_packages"])
    contracts = {c["name"]: c for c in config["contracts"]}
    independence = [c for c in contracts.values() if c["type"] == "independence"]
    assert [set(c["modules"]) for c in independence] == [packages]
    for name in ("The runtime library imports no service, nor the CLI or the test support",
                 "The CLI talks to services over HTTP and Kafka, never by importing them"):
        missing = packages - set(contracts[name]["forbidden_modules"])
        assert not missing, f"{name}: add {sorted(missing)}"
    alone = contracts["A service runs on the runtime library alone (its image has no CLI or "
                      "test support)"]
    assert set(alone["source_modules"]) == packages
    ruff = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]["isort"]
    assert packages <= set(ruff["known-first-party"])
