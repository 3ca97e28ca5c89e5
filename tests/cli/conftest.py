"""The CLI against a real incidents process (uvicorn, SQLite, the real embedded broker)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from e2e.stack import Stack
from tandem_cli.broker import EmbeddedBroker


@pytest.fixture(scope="module")
def incidents_stack(broker: EmbeddedBroker,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(broker.bootstrap, tmp_path_factory.mktemp("cli"), services=["incidents"])
    stack.start()
    yield stack
    stack.stop()
