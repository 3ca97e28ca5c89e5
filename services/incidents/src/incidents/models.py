"""The incident table and its API schemas."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Field as Column
from sqlmodel import SQLModel
from tandem.db import UTCDateTime, new_id, utcnow


class Environment(StrEnum):
    production = "production"
    staging = "staging"
    testing = "testing"
    development = "development"


class Incident(SQLModel, table=True):
    id: uuid.UUID = Column(default_factory=new_id, primary_key=True)
    number: str = Column(unique=True, max_length=16)
    title: str = Column(max_length=200)
    description: str
    service: str = Column(index=True, max_length=100)
    environment: str = Column(max_length=16)
    impact: int
    urgency: int
    priority: int
    major: bool
    status: str = Column(index=True, max_length=16)
    cause_deployment_id: uuid.UUID | None = Column(default=None, unique=True)
    version: int = 1
    created_at: datetime = Column(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    updated_at: datetime = Column(default_factory=utcnow, sa_type=UTCDateTime)


class IncidentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=10000)
    service: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    environment: Environment
    impact: int = Field(ge=1, le=3)
    urgency: int = Field(ge=1, le=3)


class IncidentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    number: str
    title: str
    description: str
    service: str
    environment: Environment
    impact: int
    urgency: int
    priority: int
    major: bool
    status: str
    cause_deployment_id: uuid.UUID | None
    allowed_transitions: list[str]
    version: int
    created_at: datetime
    updated_at: datetime


class IncidentsPage(BaseModel):
    items: list[IncidentPublic]
    next_cursor: str | None


class TransitionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str = Field(min_length=1, max_length=32)
    reason: str = Field(default="", max_length=2000)
