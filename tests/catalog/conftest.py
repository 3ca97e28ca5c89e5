"""Catalog fixtures: one running catalog per test module and database backend.

Tests sharing it stay independent by using names of their own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from catalog_support import Catalog, catalog_service

from tandem_cli.broker import EmbeddedBroker
from tandem_testing import isolated_platform


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgresql"])
async def svc(request: pytest.FixtureRequest, broker: EmbeddedBroker,
              tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Catalog]:
    """One catalog service per module and backend, with topics of its own."""
    directory = tmp_path_factory.mktemp("catalog")
    async with catalog_service(isolated_platform(broker.bootstrap, directory), directory,
                               request.param) as running:
        yield running
