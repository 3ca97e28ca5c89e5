"""The catalog HTTP API: services, teams and the Backstage descriptor import. Reads need any
token; writes are an owner's (the catalog decides who approves and who is called). Each write
reads what it changes under the locking policy and leaves the rules to the modules named after
their nouns."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy import or_, select

from catalog.config import Settings
from catalog.descriptor_import import import_descriptors
from catalog.errors import DescriptorProblem, DescriptorsInvalid
from catalog.models import Revocation, Service, Team
from catalog.revocations import public as revocation_public
from catalog.revocations import revocations, revoke
from catalog.schemas import (
    ImportResult,
    Lifecycle,
    RevocationCreate,
    RevocationPublic,
    RevocationsPage,
    ServiceCreate,
    ServicePublic,
    ServicesPage,
    ServiceUpdate,
    TeamCreate,
    TeamPublic,
    TeamsPage,
    TeamUpdate,
)
from catalog.services import catalog_services, create_service, edit_service
from catalog.services import public as service_public
from catalog.teams import catalog_teams, create_team, edit_team
from catalog.teams import public as team_public
from tandem.app import Runtime, Session
from tandem.auth import Manager, Owner, Reader, parse_ttl
from tandem.http import Idempotency, JSONBody, check_if_match, resource_response
from tandem.pagination import Cursor, Limit, page
from tandem.vocabulary import NAME_PATTERN

services_router = APIRouter(prefix="/api/v1/services", tags=["services"])
teams_router = APIRouter(prefix="/api/v1/teams", tags=["teams"])
import_router = APIRouter(prefix="/api/v1/catalog", tags=["import"])
revocations_router = APIRouter(prefix="/api/v1/revocations", tags=["revocations"])

#: The ``{ref}`` of a service's or a team's path.
ServiceRef = Annotated[str, Path(description="The service's id, number (SVC0000003) or name.",
                                 examples=["payments"])]
RevocationRef = Annotated[str, Path(
    description="The revocation's id, number (REV0000001) or the revoked token's jti.",
    examples=["REV0000001"])]
TeamRef = Annotated[str, Path(description="The team's id, number (TEAM0000002) or name.",
                              examples=["payments"])]


@services_router.post("", status_code=201, response_model=ServicePublic)
async def add_service(body: ServiceCreate, session: Session, actor: Owner,
                      idem: Idempotency) -> JSONBody:
    """Write a service down (its teams must be in the catalog)."""
    if (replay := await idem.replay(session)) is not None:
        return replay
    row, snapshot = await create_service(session, body, actor=actor.sub)
    return await idem.respond(session, snapshot, location=f"/api/v1/services/{row.id}")


@services_router.get("", response_model=ServicesPage)
async def list_services(
    session: Session, _: Reader,
    owner_team: Annotated[str | None, Query(
        max_length=100, pattern=NAME_PATTERN,
        description="Only services this team owns (develops).",
        examples=["payments"])] = None,
    operations_team: Annotated[str | None, Query(
        max_length=100, pattern=NAME_PATTERN, description="Only services this team runs.",
        examples=["platform-ops"])] = None,
    team: Annotated[str | None, Query(max_length=100, pattern=NAME_PATTERN,
                                      description="Only services this team owns or runs.",
                                      examples=["payments"])] = None,
    tier: Annotated[int | None, Query(
        ge=1, le=4, description="Only services of this tier, 1 (most critical) to 4.",
        examples=[1])] = None,
    lifecycle: Annotated[Lifecycle | None, Query(
        description="Only services at this stage of their life.",
        examples=["production"])] = None,
    system: Annotated[str | None, Query(
        max_length=100, pattern=NAME_PATTERN, description="Only the services of this system.",
        examples=["commerce"])] = None,
    unowned: Annotated[bool | None, Query(description="true: only services with no owner "
                                                      "team; false: only owned ones.",
                                          examples=[True])] = None,
    source: Annotated[str | None, Query(
        pattern=r"^(api|import|discovered)$",
        description="Only services that entered the catalog this way: api, import (a "
                    "descriptor) or discovered (named by another service's event).",
        examples=["discovered"])] = None,
    limit: Limit = 50, cursor: Cursor = None,
) -> ServicesPage:
    """Services, newest first; filters are the fields."""
    stmt = select(Service)
    for name, value in (("owner_team", owner_team), ("operations_team", operations_team),
                        ("tier", tier), ("lifecycle", lifecycle), ("system", system),
                        ("source", source)):
        if value is not None:
            stmt = stmt.where(getattr(Service, name) == value)
    if team is not None:
        stmt = stmt.where(or_(Service.owner_team == team, Service.operations_team == team))
    if unowned is not None:
        stmt = stmt.where(Service.owner_team.is_(None) if unowned  # type: ignore[union-attr]
                          else Service.owner_team.is_not(None))  # type: ignore[union-attr]
    items, next_cursor = await page(session, stmt, Service, limit=limit, cursor=cursor)
    return ServicesPage(items=[service_public(s) for s in items], next_cursor=next_cursor)


@services_router.get("/{ref}", response_model=ServicePublic)
async def get_service(ref: ServiceRef, session: Session, _: Reader) -> JSONBody:
    """A service by id, number or name."""
    return resource_response(service_public(await catalog_services.get(session, ref)))


@services_router.patch("/{ref}", response_model=ServicePublic)
async def update_service(ref: ServiceRef, body: ServiceUpdate, request: Request, session: Session,
                         actor: Owner) -> JSONBody:
    """Edit a service (``If-Match`` honoured); its name never changes."""
    row = await catalog_services.get(session, ref, for_update=True)
    check_if_match(request, row.version)
    return resource_response(await edit_service(session, row, body, actor=actor.sub))


@teams_router.post("", status_code=201, response_model=TeamPublic)
async def add_team(body: TeamCreate, session: Session, actor: Owner,
                   idem: Idempotency) -> JSONBody:
    """Write a team down with its members (token subs)."""
    if (replay := await idem.replay(session)) is not None:
        return replay
    row, snapshot = await create_team(session, body, actor=actor.sub)
    return await idem.respond(session, snapshot, location=f"/api/v1/teams/{row.id}")


@teams_router.get("", response_model=TeamsPage)
async def list_teams(
    session: Session, _: Reader,
    member: Annotated[str | None, Query(min_length=1, max_length=255,
                                        description="Only teams this person (token sub) "
                                                    "belongs to.",
                                        examples=["alice"])] = None,
    limit: Limit = 50, cursor: Cursor = None,
) -> TeamsPage:
    """Teams, newest first."""
    stmt = select(Team)
    if member is not None:
        # Membership is read from the rows, not the database: JSON containment differs by
        # database, and the catalog's teams are few.
        rows = [t for t in (await session.scalars(stmt)).all() if member in (t.members or [])]
        rows.sort(key=lambda t: (t.created_at, t.id), reverse=True)
        return TeamsPage(items=[team_public(t) for t in rows[:limit]], next_cursor=None)
    items, next_cursor = await page(session, stmt, Team, limit=limit, cursor=cursor)
    return TeamsPage(items=[team_public(t) for t in items], next_cursor=next_cursor)


@teams_router.get("/{ref}", response_model=TeamPublic)
async def get_team(ref: TeamRef, session: Session, _: Reader) -> JSONBody:
    """A team by id, number or name."""
    return resource_response(team_public(await catalog_teams.get(session, ref)))


@teams_router.patch("/{ref}", response_model=TeamPublic)
async def update_team(ref: TeamRef, body: TeamUpdate, request: Request, session: Session,
                      actor: Owner) -> JSONBody:
    """Edit a team (``members`` replaces the list; ``If-Match`` honoured)."""
    row = await catalog_teams.get(session, ref, for_update=True)
    check_if_match(request, row.version)
    return resource_response(await edit_team(session, row, body, actor=actor.sub))


@import_router.post(
    "/import", response_model=ImportResult,
    summary="Import Backstage descriptors (catalog-info.yaml)",
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/yaml": {"schema": {
            "type": "string",
            "description": "One or many Backstage entity documents (Component, Group, User, "
                           "System), separated by ---."}}}}},
    responses={422: {"description": "A document is not valid YAML or not a valid Backstage "
                                    "entity; `errors` names the document and field, and "
                                    "nothing was imported."}},
)
async def import_catalog(request: Request, session: Session, settings: Settings, actor: Owner,
                         idem: Idempotency) -> JSONBody:
    """All or nothing per request, and idempotent: the same descriptors again change
    nothing (``changed: false``)."""
    if (replay := await idem.replay(session)) is not None:
        return replay
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DescriptorsInvalid([DescriptorProblem(1, None, "", "the body is not UTF-8 "
                                                                 "text")]) from None
    result = await import_descriptors(session, settings, text, actor=actor.sub)
    return await idem.respond(session, result, status=200)


@revocations_router.post("", status_code=201, response_model=RevocationPublic, responses={
    200: {"model": RevocationPublic,
          "description": "The jti was already revoked: that revocation."}})
async def revoke_token(body: RevocationCreate, session: Session, runtime: Runtime,
                       actor: Manager, idem: Idempotency) -> JSONBody:
    """Revoke a token by its ``jti`` (``tandem token revoke``): every service refuses it within
    seconds. Revoking a ``jti`` already revoked answers 200 with that revocation."""
    if (replay := await idem.replay(session)) is not None:
        return replay
    snapshot, created = await revoke(
        session, body, actor=actor.sub,
        longest_lifetime=parse_ttl(runtime.platform.auth_max_token_lifetime))
    return await idem.respond(session, snapshot, status=201 if created else 200,
                              location=f"/api/v1/revocations/{snapshot.id}")


@revocations_router.get("", response_model=RevocationsPage)
async def list_revocations(session: Session, _: Manager, limit: Limit = 50,
                           cursor: Cursor = None) -> RevocationsPage:
    """Revoked tokens, newest first."""
    items, next_cursor = await page(session, select(Revocation), Revocation, limit=limit,
                                    cursor=cursor)
    return RevocationsPage(items=[revocation_public(r) for r in items], next_cursor=next_cursor)


@revocations_router.get("/{ref}", response_model=RevocationPublic)
async def get_revocation(ref: RevocationRef, session: Session, _: Manager) -> JSONBody:
    """A revocation by id, number or jti."""
    return resource_response(revocation_public(await revocations.get(session, ref)))
