"""Who the service takes the caller for: ``GET /api/v1/identity`` answers the bearer token's
identity as this service resolved it (for a token of an identity provider, the role and teams
its groups map to; for a CI job, its repository and environment). ``tandem whoami`` shows it.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from tandem.auth import Reader, Role

router = APIRouter(prefix="/api/v1", tags=["identity"])


class Identity(BaseModel):
    sub: str = Field(description="Who the token speaks for (the actor of what it does).",
                     examples=["olivia"])
    role: Role = Field(description="The Tandem role the service grants the token.",
                       examples=["practitioner"])
    issuer: str | None = Field(
        description="The identity provider that issued the token; null for a local token.",
        examples=["https://token.actions.githubusercontent.com"])
    teams: list[str] = Field(
        description="The catalog teams the provider's groups map to (empty for a local token).",
        examples=[["payments"]])
    repository: str | None = Field(
        description="A CI job's repository, which limits it to that repository's services.",
        examples=["github.com/acme/payments"])
    environment: str | None = Field(
        description="A CI job's deployment environment, when its provider names one.",
        examples=["production"])


@router.get("/identity", response_model=Identity)
async def identity(actor: Reader) -> Identity:
    """The caller's identity as this service resolved it from the bearer token."""
    return Identity(sub=actor.sub, role=actor.role, issuer=actor.issuer, teams=list(actor.teams),
                    repository=actor.repository, environment=actor.environment)
