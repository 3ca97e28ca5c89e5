"""The fault suite runs real processes for a few minutes, so it is a CI step of its own
(`make faults`): collected only when named (`pytest tests/faults`) or with ``TANDEM_FAULTS=1``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def _named_on_command_line(config: pytest.Config) -> bool:
    for arg in config.args:
        path = Path(arg.split("::", 1)[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.resolve() == HERE / "conftest.py":
        return None
    if os.environ.get("TANDEM_FAULTS") == "1" or _named_on_command_line(config):
        return None
    return True
