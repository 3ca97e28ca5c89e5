"""Least privilege for CI jobs: a pipeline token from GitHub Actions or GitLab CI carries its
repository, and records standard changes (what lets its deployment through the gate) only for
the service whose catalog ``repository`` it is, and only in the environments the catalog
allows its CI (``ci_environments``, when it names any; the service projection keeps both). A
local pipeline token names no repository and keeps the role's reach.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from changes.models import ServiceView
from tandem.auth import Actor, check_pipeline_reach


async def check_pipeline_scope(session: AsyncSession, actor: Actor, service: str,
                               environment: str, *, rule: str) -> None:
    """Refuse (403, naming ``rule``) a CI job's token acting on another repository's service,
    or in an environment the catalog does not allow its CI."""
    if actor.repository is None:
        return
    views = (await session.scalars(select(ServiceView).where(ServiceView.name == service))).all()
    check_pipeline_reach(actor, service, environment, views, rule=rule)
