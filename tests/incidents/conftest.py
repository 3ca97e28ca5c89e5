"""Incidents fixtures: one running service per test module and database backend.

Tests sharing it stay independent by using service names of their own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from incidents_support import Running, incidents_service

from tandem_cli.broker import EmbeddedBroker


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgresql"])
async def svc(request: pytest.FixtureRequest, broker: EmbeddedBroker,
              tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    """One incidents service per module and backend (SLA checks fast, P5 without targets)."""
    async with incidents_service(broker, tmp_path_factory.mktemp("incidents"), request.param,
                                 sla_check_interval_s=0.2) as running:
        yield running
