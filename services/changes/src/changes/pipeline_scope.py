"""Least privilege for CI jobs: a pipeline token from GitHub Actions or GitLab CI carries its
repository, and records standard changes (what lets its deployment through the gate) only for
the service whose catalog ``repository`` it is (the service projection keeps it). A local
pipeline token names no repository and keeps the role's reach.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from changes.models import ServiceView
from tandem.auth import Actor, check_pipeline_repository


async def check_pipeline_scope(session: AsyncSession, actor: Actor, service: str, *,
                               rule: str) -> None:
    """Refuse (403, naming ``rule``) a CI job's token acting on another repository's service."""
    if actor.repository is None:
        return
    repositories = list((await session.scalars(
        select(ServiceView.repository).where(ServiceView.name == service))).all())
    check_pipeline_repository(actor, service, repositories, rule=rule)
