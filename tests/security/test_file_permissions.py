"""The embedded default's files are its owner's alone: ``var/`` is 0700, the generated signing
secret and every SQLite database (with its -wal and -shm files) 0600, from the moment they are
created (never created readable by others and narrowed afterwards)."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

from incidents.config import MIGRATIONS_DIR
from tandem.db import Database
from tandem.migrations import upgrade
from tandem.settings import PlatformSettings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_var_the_secret_and_the_databases_are_private(tmp_path: Path) -> None:
    var = tmp_path / "var"
    old = os.umask(0o022)  # a permissive umask, as on most workstations
    try:
        secret = PlatformSettings(var_dir=var).jwt_secret
        url = f"sqlite+aiosqlite:///{var / 'incidents.db'}"
        upgrade(MIGRATIONS_DIR, url)

        async def touch() -> None:
            db = Database(url, topic="t")
            async with db.transaction() as session:
                await session.connection()
            await db.dispose()

        asyncio.run(touch())
    finally:
        os.umask(old)
    assert len(secret) >= 48
    assert mode(var) == 0o700
    assert mode(var / "auth-secret") == 0o600
    files = sorted(p.name for p in var.iterdir())
    assert "incidents.db" in files
    for name in files:
        if name.startswith("incidents.db"):
            assert mode(var / name) == 0o600, name
    # A second read finds the same secret (it is made once).
    assert PlatformSettings(var_dir=var).jwt_secret == secret
