"""The fault suite runs real processes for a few minutes, so it is a CI step of its own
(`make faults`): collected only when named (`pytest tests/faults`) or with ``TANDEM_FAULTS=1``.
"""

from __future__ import annotations

from pathlib import Path

from tandem_testing import drill_collection

HERE = Path(__file__).resolve().parent


pytest_ignore_collect = drill_collection(HERE, "TANDEM_FAULTS")
