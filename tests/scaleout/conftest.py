"""The scale-out proof runs real service processes for about a minute, so it is a CI step of
its own: collected only when named (`pytest tests/scaleout`) or with ``TANDEM_SCALEOUT=1``.
"""

from __future__ import annotations

from pathlib import Path

from tandem_testing import drill_collection

HERE = Path(__file__).resolve().parent


pytest_ignore_collect = drill_collection(HERE, "TANDEM_SCALEOUT")
