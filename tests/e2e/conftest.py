"""One stack for the whole e2e session; each scenario works on its own service names."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from e2e.scenarios import Touched
from e2e.stack import Stack
from tandem_cli.broker import EmbeddedBroker


@pytest.fixture(scope="session")
def stack(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """incidents, changes, deployments and the catalog, the gate in its default mode
    (receipt)."""
    running = Stack(broker.bootstrap, tmp_path_factory.mktemp("stack-receipt"),
                    services=["incidents", "changes", "deployments", "catalog"],
                    env={"TANDEM_GATE_MODE": "receipt"}).start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def touched() -> Touched:
    """The aggregates each scenario touched, for the subscriber's check (scenario 6)."""
    return {}
