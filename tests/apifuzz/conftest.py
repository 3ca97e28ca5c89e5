"""Schemathesis over every service's API takes a few minutes, so it is a CI step of its own
(`make apifuzz`): collected only when named (`pytest tests/apifuzz`) or with
``TANDEM_APIFUZZ=1``. It serves the apps as the fuzz suite does."""

from __future__ import annotations

import sys
from pathlib import Path

from tandem_testing import drill_collection

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "security"))
sys.path.insert(0, str(HERE.parent / "fuzz"))

pytest_ignore_collect = drill_collection(HERE, "TANDEM_APIFUZZ")
