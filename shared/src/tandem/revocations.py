"""Revoked tokens, honoured by every service within seconds.

``tandem token revoke JTI`` asks the catalog, which records the revocation (aggregate
``revocation``) and publishes ``tandem.revocation.created`` on ``tandem.catalog`` through its
outbox. Every service consumes it through the one consumer loop: the app factory adds
:func:`record_revocation` to the service's first reaction's consumer (a service without
reactions gets a consumer for it alone), writing the ``jti`` to its ``revoked_token`` table in
the inbox's transaction; the process that applied it refuses the
token at once, and every replica re-reads the table each ``auth_revocation_refresh_s``
(replicas of one service share a consumer group, so only one of them sees each event).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from tandem.auth import RevokedTokens
from tandem.db import Database, upsert, utcnow
from tandem.events import CloudEvent
from tandem.tables import RevokedToken

log = logging.getLogger("tandem.revocations")

#: The event that revokes a token (its owner is the catalog, on ``tandem.catalog``).
REVOKED = "tandem.revocation.created"
#: The topic (logical name) revocations are published on.
REVOCATION_TOPIC = "catalog"


class RevocationSnapshot(BaseModel):
    """The fields of ``data.revocation`` every service reads."""

    model_config = ConfigDict(extra="ignore")

    jti: str
    expires_at: datetime


def revocation_of(event: CloudEvent) -> RevocationSnapshot:
    return RevocationSnapshot.model_validate(event.data["revocation"])


async def record_revocation(session: AsyncSession, event: CloudEvent, **_: Any) -> None:
    """Keep the revoked ``jti`` until the token would have expired anyway."""
    revocation = revocation_of(event)
    await upsert(session, RevokedToken.__table__,  # type: ignore[attr-defined]
                 {"jti": revocation.jti, "expires_at": revocation.expires_at,
                  "revoked_at": event.time})


def remember(revoked: RevokedTokens, event: CloudEvent) -> None:
    """After the revocation is committed here: this process refuses the token at once."""
    revocation = revocation_of(event)
    revoked.add(revocation.jti, revocation.expires_at)


async def load_revoked(db: Database) -> dict[str, datetime]:
    """The jtis revoked and not yet expired, from this service's database (expired ones are
    deleted on the way)."""
    now = utcnow()
    async with db.transaction() as session:
        await session.execute(delete(RevokedToken).where(
            RevokedToken.expires_at <= now))  # type: ignore[arg-type]
        rows = await session.execute(select(RevokedToken.jti, RevokedToken.expires_at))
        return {row[0]: row[1] for row in rows.all()}


async def follow_revocations(db: Database, revoked: RevokedTokens, interval_s: float) -> None:
    """Re-read the revoked tokens every ``interval_s`` until cancelled."""
    while True:
        try:
            revoked.replace(await load_revoked(db))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database may be away; the next round tries again
            log.warning("could not read the revoked tokens: %r", exc)
        await asyncio.sleep(interval_s)
