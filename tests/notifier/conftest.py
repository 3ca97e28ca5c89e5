"""Notifier fixtures: the notifier beside the incidents service and the catalog, one stack per
test module and database backend. Tests sharing it stay independent by using services,
receivers and subscriptions of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from notifier_support import Stack, notifier_stack

from tandem_cli.broker import EmbeddedBroker


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgresql"])
async def stack(request: pytest.FixtureRequest, broker: EmbeddedBroker,
                tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with notifier_stack(broker.bootstrap, tmp_path_factory.mktemp("notifier"),
                              request.param) as running:
        yield running
