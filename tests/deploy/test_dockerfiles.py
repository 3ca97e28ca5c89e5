"""The service images: each Dockerfile read with BuildKit's own parser and linted by hadolint.

No Docker engine runs here, so these check what an image build depends on: a builder stage
that builds wheels pinned by requirements.lock, a slim runtime stage that runs the service as a
numeric non-root user, the documented entry point and port, and no secrets baked in.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tandem.settings import SERVICES

dockerfile = pytest.importorskip("dockerfile", reason="in requirements.in; run make lock")

ROOT = Path(__file__).resolve().parents[2]
PORTS = {**SERVICES, "dashboard": 8004}
SECRET_WORDS = re.compile(r"(SECRET|PASSWORD|PASSWD|TOKEN|API_?KEY|PRIVATE|CREDENTIAL)", re.I)


def stages(path: Path) -> list[list[Any]]:
    """The Dockerfile's instructions grouped by build stage (one list per FROM)."""
    out: list[list[Any]] = []
    for command in dockerfile.parse_file(str(path)):
        if command.cmd == "FROM":
            out.append([])
        if out:
            out[-1].append(command)
    return out


@pytest.fixture(params=sorted(PORTS))
def service(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_every_service_package_has_a_dockerfile() -> None:
    packages = {p.parent.name for p in ROOT.glob("services/*/pyproject.toml")}
    missing = [name for name in packages if not (ROOT / "services" / name / "Dockerfile").exists()]
    assert not missing, f"services without a Dockerfile: {missing}"
    assert packages <= set(PORTS), f"services without a contract port: {packages - set(PORTS)}"


def test_image_is_multi_stage_and_builds_from_the_lock(service: str) -> None:
    builder, *rest = stages(ROOT / "services" / service / "Dockerfile")
    assert rest, "a single-stage build ships compilers and build caches"
    assert builder[0].value[-2:] == ("AS", "builder")
    copies = [c.value for c in builder if c.cmd == "COPY"]
    assert ("requirements.lock", "./") in copies
    assert ("shared/", "shared/") in copies
    assert (f"services/{service}/", f"services/{service}/") in copies
    build = " ".join(" ".join(c.value) for c in builder if c.cmd == "RUN")
    assert "PIP_CONSTRAINT=/src/requirements.lock" in build, "versions must come from the lock"
    assert f"./services/{service}" in build and "./shared" in build

    runtime = rest[-1]
    assert "slim" in runtime[0].value[0] or "PYTHON_IMAGE" in runtime[0].value[0]
    assert not any(c.cmd == "COPY" and "--from=builder" not in c.flags for c in runtime), (
        "the runtime stage takes nothing from the build context"
    )
    install = " ".join(" ".join(c.value) for c in runtime if c.cmd == "RUN")
    assert "--no-index" in install and f"tandem-{service}" in install


def test_runtime_runs_the_service_as_a_numeric_non_root_user(service: str) -> None:
    runtime = stages(ROOT / "services" / service / "Dockerfile")[-1]
    users = [c.value[0] for c in runtime if c.cmd == "USER"]
    assert users, "the runtime stage must switch to a non-root user"
    uid = users[-1].split(":")[0]
    # Kubernetes can only verify runAsNonRoot for a numeric user.
    assert uid.isdigit() and int(uid) != 0
    cmd = next(c for c in reversed(runtime) if c.cmd == "CMD")
    assert cmd.json, "exec form, so uvicorn is PID 1 and receives SIGTERM"
    argv = list(cmd.value)
    assert argv[:3] == ["uvicorn", f"{service}.main:create_app", "--factory"]
    assert argv[argv.index("--port") + 1] == str(PORTS[service])
    assert [c.value for c in runtime if c.cmd == "EXPOSE"] == [(str(PORTS[service]),)]
    # Kubernetes probes /livez and /readyz; an image HEALTHCHECK would only duplicate them.
    assert not any(c.cmd == "HEALTHCHECK" for c in runtime)


def test_no_secret_is_baked_into_an_image(service: str) -> None:
    path = ROOT / "services" / service / "Dockerfile"
    for command in dockerfile.parse_file(str(path)):
        if command.cmd in ("ENV", "ARG", "LABEL"):
            names = (
                command.value[::2]
                if command.cmd != "ARG"
                else [v.split("=")[0] for v in command.value]
            )
            assert not [n for n in names if SECRET_WORDS.search(n)], command.original
        assert command.cmd != "ADD", "ADD fetches URLs and unpacks archives; COPY is explicit"
    # The build context is allow-listed, so no local .env, token or database file can enter it.
    lines = [
        line
        for line in (path.parent / "Dockerfile.dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "*"
    assert {line[1:] for line in lines if line.startswith("!")} == {
        "requirements.lock",
        "shared/",
        f"services/{service}/",
    }


def test_dockerfiles_follow_one_pattern() -> None:
    """Every image is the incidents one with its own name and port: one way to build."""
    reference = (ROOT / "services/incidents/Dockerfile").read_text()
    for name, port in PORTS.items():
        text = (ROOT / "services" / name / "Dockerfile").read_text()
        assert text.replace(name, "incidents").replace(str(port), "8001") == reference, name


def test_hadolint_finds_nothing() -> None:
    files = [str(ROOT / "services" / name / "Dockerfile") for name in sorted(PORTS)]
    hadolint = str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_entry_points_exist_in_the_service(service: str) -> None:
    """The image's CMD and the init container's migrate step name real code (read, not
    imported: services never share a process, and their table metadata would collide)."""
    package = ROOT / "services" / service / "src" / service
    main = ast.parse((package / "main.py").read_text())
    assert "create_app" in {n.name for n in main.body if isinstance(n, ast.FunctionDef)}
    entry = (package / "__main__.py").read_text()
    assert "migrate_command(" in entry or '"migrate"' in entry  # the dashboard has no database
