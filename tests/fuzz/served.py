"""A service app served by uvicorn on a loopback port from a thread of its own, so that
synchronous fuzzers (schemathesis over requests) can call it while its lifespan runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from apps_under_test import build_app, platform_for

from tandem.settings import PlatformSettings
from tandem_cli.broker import EmbeddedBroker, free_port


@contextmanager
def served(name: str, broker: EmbeddedBroker, var_dir: Path,
           **platform_overrides: object) -> Iterator[tuple[str, PlatformSettings]]:
    """``(base_url, platform)`` of service ``name`` on SQLite, running until the block ends."""
    platform = platform_for(broker, var_dir, **{"log_level": "WARNING", **platform_overrides})
    url = None if name == "dashboard" else f"sqlite+aiosqlite:///{var_dir / f'{name}.db'}"
    app = build_app(name, platform, url)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                           lifespan="on", access_log=False))
    thread = threading.Thread(target=server.run, name=f"served-{name}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", platform
    finally:
        server.should_exit = True
        thread.join(30)
