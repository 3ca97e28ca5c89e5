"""Token revocations (aggregate ``revocation``, numbers ``REV...``): the catalog writes each
down and publishes ``tandem.revocation.created`` in the same transaction; every service's
consumer of it then refuses the token (:mod:`tandem.revocations`).

Revoking a ``jti`` twice is the same fact: the second answer is the first revocation.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.events import RevocationCreated
from catalog.models import Revocation
from catalog.schemas import RevocationCreate, RevocationPublic
from tandem.aggregate import Aggregate
from tandem.db import utcnow

_NUMBER = re.compile(r"^REV\d{7}$", re.IGNORECASE)


def public(row: Revocation) -> RevocationPublic:
    """The revocation as the API returns it (and its event carries it)."""
    return RevocationPublic.model_validate({
        "id": row.id, "number": row.number, "jti": row.jti, "expires_at": row.expires_at,
        "reason": row.reason, "version": row.version, "created_at": row.created_at,
        "updated_at": row.updated_at,
    })


class RevocationAggregate(Aggregate[Revocation, RevocationPublic]):
    """Revocations on the core; a reference is an id, a number or the revoked ``jti``."""

    def ref_clause(self, ref: str) -> Any:
        try:
            return Revocation.id == uuid.UUID(ref)
        except ValueError:
            pass
        if _NUMBER.match(ref):
            return Revocation.number == ref.upper()
        return Revocation.jti == ref

    async def snapshot(self, session: AsyncSession, row: Revocation) -> RevocationPublic:
        return public(row)


revocations = RevocationAggregate(Revocation, name="revocation", service="catalog",
                                  number_prefix="REV")


async def revoke(session: AsyncSession, body: RevocationCreate, *, actor: str,
                 longest_lifetime: timedelta) -> tuple[RevocationPublic, bool]:
    """Revoke ``body.jti``: the revocation, and whether it is new."""
    existing = (await session.scalars(revocations.locked(
        select(Revocation).where(Revocation.jti == body.jti)))).first()
    if existing is not None:
        return public(existing), False
    now = utcnow()
    # No token lives longer than the longest lifetime, so no revocation need be kept longer.
    expires_at: datetime = min(body.expires_at or now + longest_lifetime, now + longest_lifetime)
    row = await revocations.new(session, jti=body.jti, expires_at=expires_at,
                                reason=body.reason, now=now)
    return await revocations.record(session, row, RevocationCreated, actor=actor), True
