"""The catalog's tables: services, teams and token revocations (aggregates). The API's shapes are in
:mod:`catalog.schemas`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column as SAColumn
from sqlalchemy import Index, Text
from sqlmodel import Field as Column

from tandem.aggregate import AggregateColumns
from tandem.db import JSONType, UTCDateTime, service_table_base

#: This service's tables, in a metadata of their own.
ServiceTable = service_table_base()


class Service(ServiceTable, AggregateColumns, table=True):
    """A service of the catalog (aggregate ``service``, numbers ``SVC...``): the name every
    event carries, and who owns and who runs it."""

    __table_args__ = (Index("ix_service_created_at", "created_at"),)

    name: str = Column(unique=True, max_length=100)
    title: str | None = Column(default=None, max_length=200)
    description: str = Column(default="", sa_column=SAColumn(Text, nullable=False))
    tier: int | None = None
    lifecycle: str | None = Column(default=None, max_length=16)
    owner_team: str | None = Column(default=None, index=True, max_length=100)
    operations_team: str | None = Column(default=None, index=True, max_length=100)
    repository: str | None = Column(default=None, max_length=255)
    #: Where CI jobs of the repository may deploy it (empty: anywhere).
    ci_environments: list[str] = Column(default_factory=list,
                                        sa_column=SAColumn(JSONType, nullable=False))
    system: str | None = Column(default=None, max_length=100)
    runbook_url: str | None = Column(default=None, max_length=2000)
    links: list[dict[str, Any]] = Column(default_factory=list,
                                         sa_column=SAColumn(JSONType, nullable=False))
    on_call: str | None = Column(default=None, max_length=255)
    #: ``api``, ``import`` or ``discovered`` (first named by another service's event).
    source: str = Column(max_length=16)


class Team(ServiceTable, AggregateColumns, table=True):
    """A team of the catalog (aggregate ``team``, numbers ``TEAM...``): its members are token
    ``sub``s, so the other services can tell who belongs to it."""

    __table_args__ = (Index("ix_team_created_at", "created_at"),)

    name: str = Column(unique=True, max_length=100)
    title: str | None = Column(default=None, max_length=200)
    description: str = Column(default="", sa_column=SAColumn(Text, nullable=False))
    members: list[str] = Column(default_factory=list, sa_column=SAColumn(JSONType, nullable=False))
    #: The team's webhook subscription (``{"url", "format"}``) for the notifier, or null.
    notify: dict[str, Any] | None = Column(default=None,
                                           sa_column=SAColumn(JSONType, nullable=True))
    #: ``api``, ``import`` or ``named`` (created because a descriptor named it).
    source: str = Column(max_length=16)


class Revocation(ServiceTable, AggregateColumns, table=True):
    """A revoked token (aggregate ``revocation``, numbers ``REV...``): every service refuses
    its ``jti`` from the event on, until the token would have expired anyway."""

    __table_args__ = (Index("ix_revocation_created_at", "created_at"),)

    jti: str = Column(unique=True, max_length=255)
    expires_at: datetime = Column(sa_type=UTCDateTime)
    reason: str = Column(default="", sa_column=SAColumn(Text, nullable=False))
