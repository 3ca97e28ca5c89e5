"""The catalog API's shapes: request bodies (unknown fields refused), the service and the team
as every answer and event carries them, and the answer of an import."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from catalog.rules.descriptors import LINKS_MAX, MEMBERS_MAX
from catalog.rules.names import NAME_MAX, NAME_PATTERN, member_name, name_problem
from tandem.inputs import Moment, Patch
from tandem.pagination import Page

Lifecycle = Literal["experimental", "production", "deprecated"]
NotifyFormat = Literal["cloudevents", "slack"]
Environment = Literal["production", "staging", "testing", "development"]
URL_PATTERN = r"^https?://[^\s/?#]+\S*$"


def _catalog_name(value: str) -> str:
    if (why := name_problem(value)) is not None:
        raise ValueError(why)
    return value


def _member(value: str) -> str:
    member, why = member_name(value)
    if why is not None or member is None:
        raise ValueError(why)
    return member


#: A service or team name (Backstage's rule: lowercase, ``[a-z0-9-]``, at most 63 characters).
CatalogName = Annotated[str, Field(min_length=1, max_length=NAME_MAX, pattern=NAME_PATTERN,
                                   examples=["payments"]),
                        AfterValidator(_catalog_name)]
Member = Annotated[str, AfterValidator(_member)]
Url = Annotated[str, Field(max_length=2000, pattern=URL_PATTERN)]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Link(Input):
    url: Url
    title: str | None = Field(default=None, max_length=200)


class Notify(Input):
    """Where the team's notifications go (the notifier's webhook subscription)."""

    url: Url
    format: NotifyFormat = "cloudevents"


class ServiceFields(Input):
    """The fields of a service that people edit (and a Component descriptor maps)."""

    title: str | None = Field(default=None, max_length=200)
    description: str = Field(default="", max_length=10000)
    tier: int | None = Field(default=None, ge=1, le=4, description="1 = most critical.")
    lifecycle: Lifecycle | None = None
    owner_team: CatalogName | None = Field(default=None,
                                           description="The developers' team.")
    operations_team: CatalogName | None = Field(
        default=None, description="The application management team that runs it.")
    repository: str | None = Field(default=None, max_length=255,
                                   pattern=r"^[A-Za-z0-9.-]+\.[A-Za-z]+/\S+$",
                                   examples=["github.com/acme/payments"])
    ci_environments: list[Environment] = Field(
        default_factory=list, max_length=4,
        description="The environments CI jobs of its repository may deploy it to (their OIDC "
                    "tokens); empty: any.")
    system: CatalogName | None = None
    runbook_url: Url | None = None
    links: list[Link] = Field(default_factory=list, max_length=LINKS_MAX)
    on_call: str | None = Field(default=None, min_length=1, max_length=255,
                                description="Who to call, e.g. pagerduty:PABC123.")


class ServiceCreate(ServiceFields):
    name: CatalogName = Field(description="The slug every event carries (`payments`).")


class ServiceUpdate(Input, Patch):
    """A PATCH: only the fields given change; the name never does."""

    never_null = ("description", "links", "ci_environments")

    title: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=10000)
    tier: int | None = Field(default=None, ge=1, le=4)
    lifecycle: Lifecycle | None = None
    owner_team: CatalogName | None = None
    operations_team: CatalogName | None = None
    repository: str | None = Field(default=None, max_length=255,
                                   pattern=r"^[A-Za-z0-9.-]+\.[A-Za-z]+/\S+$")
    ci_environments: list[Environment] | None = Field(default=None, max_length=4)
    system: CatalogName | None = None
    runbook_url: Url | None = None
    links: list[Link] | None = Field(default=None, max_length=LINKS_MAX)
    on_call: str | None = Field(default=None, min_length=1, max_length=255)


class LinkPublic(BaseModel):
    url: str
    title: str | None


class ServicePublic(BaseModel):
    """A service as the API returns it and every event carries it."""

    id: uuid.UUID
    number: str
    name: str = Field(description="The slug every event of the other services carries.")
    title: str | None
    description: str
    tier: int | None = Field(description="1 (most critical) to 4; null when not declared.")
    lifecycle: Lifecycle | None
    owner_team: str | None = Field(description="The developers' team; null: unowned.")
    operations_team: str | None = Field(description="The application management team.")
    unowned: bool = Field(description="No owner team is written down for it.")
    repository: str | None
    ci_environments: list[str] = Field(
        description="Where CI jobs of its repository may deploy it; empty: anywhere.")
    system: str | None
    runbook_url: str | None
    links: list[LinkPublic]
    on_call: str | None
    source: Literal["api", "import", "discovered"] = Field(
        description="How it entered the catalog; discovered: first named by another "
                    "service's event, registered by itself.")
    version: int
    created_at: datetime
    updated_at: datetime


ServicesPage = Page[ServicePublic]


class TeamCreate(Input):
    name: CatalogName
    title: str | None = Field(default=None, max_length=200)
    description: str = Field(default="", max_length=10000)
    members: list[Member] = Field(default_factory=list, max_length=MEMBERS_MAX,
                                  description="Token subs of the people in the team.")
    notify: Notify | None = None


class TeamUpdate(Input, Patch):
    """A PATCH: ``members`` replaces the list."""

    never_null = ("description", "members")

    title: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=10000)
    members: list[Member] | None = Field(default=None, max_length=MEMBERS_MAX)
    notify: Notify | None = None


class NotifyPublic(BaseModel):
    url: str
    format: NotifyFormat


class TeamPublic(BaseModel):
    """A team as the API returns it and every event carries it."""

    id: uuid.UUID
    number: str
    name: str
    title: str | None
    description: str
    members: list[str] = Field(description="Token subs, sorted.")
    notify: NotifyPublic | None
    source: Literal["api", "import", "named"] = Field(
        description="named: created because a descriptor named it (no members yet).")
    version: int
    created_at: datetime
    updated_at: datetime


TeamsPage = Page[TeamPublic]


class Outcome(BaseModel):
    """What an import did to one kind of entry, by name."""

    created: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)


class IgnoredDocument(BaseModel):
    document: int
    kind: str
    name: str | None


class ImportResult(BaseModel):
    """``POST /api/v1/catalog/import``: what the descriptors changed (nothing, the second
    time)."""

    documents: int
    services: Outcome
    teams: Outcome
    systems: list[str] = Field(description="Systems described (services name them).")
    ignored: list[IgnoredDocument] = Field(
        description="Documents of Backstage kinds the catalog takes nothing from.")
    changed: bool = Field(description="Whether anything was created or updated.")


class RevocationCreate(BaseModel):
    """Revoke a token by its ``jti``; ``expires_at`` (the token's ``exp``) bounds how long it is
    kept, else the longest lifetime a token may have from now."""

    model_config = ConfigDict(extra="forbid")

    jti: str = Field(min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$")
    expires_at: Moment | None = Field(
        default=None, description="The token's exp, with its time zone.")
    reason: str = Field(default="", max_length=2000)


class RevocationPublic(BaseModel):
    """A revoked token as the API returns it and the revocation event carries it."""

    id: uuid.UUID
    number: str
    jti: str
    expires_at: datetime = Field(description="Refused until then (the token's exp).")
    reason: str
    version: int
    created_at: datetime
    updated_at: datetime


RevocationsPage = Page[RevocationPublic]
