"""The catalog API's shapes: request bodies (unknown fields refused), the service and the team
as every answer and event carries them, and the answer of an import."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from catalog.rules.descriptors import LINKS_MAX, MEMBERS_MAX
from catalog.rules.names import NAME_MAX, NAME_PATTERN, member_name, name_problem
from tandem.inputs import Input, Moment, Patch
from tandem.pagination import Page

Lifecycle = Literal["experimental", "production", "deprecated"]
NotifyFormat = Literal["cloudevents", "slack"]
Environment = Literal["production", "staging", "testing", "development"]
URL_PATTERN = r"^https?://[^\s/?#]+\S*$"
#: A team's notification address, for the API's examples.
NOTIFY_EXAMPLE = {"url": "https://hooks.slack.com/services/T024F7Y2A/B07QJ3K5L/9xWm2pQe7RtY",
                  "format": "slack"}


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


class Link(Input):
    url: Url = Field(
        description="Where the link goes (http or https).",
        examples=["https://grafana.example.com/d/payments"])
    title: str | None = Field(
        description="What the link is, in a few words; null shows the address.",
        examples=["Dashboard"],
        default=None, max_length=200)


class Notify(Input):
    """Where the team's notifications go (the notifier's webhook subscription)."""

    url: Url = Field(
        description="The webhook address the team's notifications are posted to.",
        examples=[NOTIFY_EXAMPLE["url"]])
    format: NotifyFormat = Field(
        default="cloudevents",
        description="cloudevents: the event as JSON (CloudEvents); slack: a Slack message.",
        examples=["slack"])


class ServiceFields(Input):
    """The fields of a service that people edit (and a Component descriptor maps)."""

    title: str | None = Field(
        description="The service's display name; null shows its name.",
        examples=["Payments API"],
        default=None, max_length=200)
    description: str = Field(
        description="What the service does, for people; empty when unset.",
        examples=["Authorizes and captures card payments for checkout."],
        default="", max_length=10000)
    tier: int | None = Field(
        examples=[1],
        default=None, ge=1, le=4, description="1 = most critical.")
    lifecycle: Lifecycle | None = Field(
        default=None,
        description="experimental, production or deprecated; null when not declared.",
        examples=["production"])
    owner_team: CatalogName | None = Field(
        examples=["payments"],
        default=None,
        description="The developers' team.")
    operations_team: CatalogName | None = Field(
        examples=["platform-ops"],
        default=None, description="The application management team that runs it.")
    repository: str | None = Field(
        description="The source repository, as host/owner/name; null when unknown.",
        default=None, max_length=255,
        pattern=r"^[A-Za-z0-9.-]+\.[A-Za-z]+/\S+$",
        examples=["github.com/acme/payments"])
    ci_environments: list[Environment] = Field(
        default_factory=list, max_length=4,
        description="The environments CI jobs of its repository may deploy it to (their OIDC "
                    "tokens); empty: any.",
        examples=[["staging", "production"]])
    system: CatalogName | None = Field(
        default=None,
        description="The system the service is part of (a catalog name); null when none.",
        examples=["commerce"])
    runbook_url: Url | None = Field(
        default=None,
        description="Where the runbook is; null when none.",
        examples=["https://wiki.example.com/runbooks/payments"])
    links: list[Link] = Field(
        description="Other links worth having at hand in an incident (dashboards, logs).",
        examples=[[{"url": "https://grafana.example.com/d/payments", "title": "Dashboard"}]],
        default_factory=list, max_length=LINKS_MAX)
    on_call: str | None = Field(
        examples=["pagerduty:PABC123"],
        default=None, min_length=1, max_length=255,
        description="Who to call, e.g. pagerduty:PABC123.")


class ServiceCreate(ServiceFields):
    name: CatalogName = Field(description="The slug every event carries (`payments`).")


class ServiceUpdate(Input, Patch):
    """A PATCH: only the fields given change; the name never does."""

    never_null = ("description", "links", "ci_environments")

    title: str | None = Field(
        description="A new display name; null shows the name.",
        examples=["Payments API"],
        default=None, max_length=200)
    description: str | None = Field(
        description="A new description.",
        examples=["Authorizes and captures card payments."],
        default=None, max_length=10000)
    tier: int | None = Field(
        description="A new tier, 1 (most critical) to 4; null when not declared.",
        examples=[2],
        default=None, ge=1, le=4)
    lifecycle: Lifecycle | None = Field(
        default=None,
        description="experimental, production or deprecated; null when not declared.",
        examples=["deprecated"])
    owner_team: CatalogName | None = Field(
        default=None,
        description="The developers' team; null leaves it unowned.",
        examples=["payments"])
    operations_team: CatalogName | None = Field(
        default=None,
        description="The application management team that runs it; null for none.",
        examples=["platform-ops"])
    repository: str | None = Field(
        description="The source repository, as host/owner/name; null when unknown.",
        examples=["github.com/acme/payments"],
        default=None, max_length=255,
        pattern=r"^[A-Za-z0-9.-]+\.[A-Za-z]+/\S+$")
    ci_environments: list[Environment] | None = Field(
        default=None, max_length=4,
        description="The environments CI jobs of its repository may deploy it to, replacing "
                    "the list; empty: any.",
        examples=[["production"]])
    system: CatalogName | None = Field(
        default=None,
        description="The system it is part of; null for none.",
        examples=["commerce"])
    runbook_url: Url | None = Field(
        default=None,
        description="Where the runbook is; null for none.",
        examples=["https://wiki.example.com/runbooks/payments"])
    links: list[Link] | None = Field(
        description="The links, replacing the list.",
        examples=[[{"url": "https://grafana.example.com/d/payments", "title": "Dashboard"}]],
        default=None, max_length=LINKS_MAX)
    on_call: str | None = Field(
        description="Who to call, such as pagerduty:PABC123; null for nobody named.",
        examples=["pagerduty:PABC123"],
        default=None, min_length=1, max_length=255)


class LinkPublic(BaseModel):
    url: str = Field(
        description="Where the link goes.")
    title: str | None = Field(
        description="What the link is; null when untitled.")


class ServicePublic(BaseModel):
    """A service as the API returns it and every event carries it."""

    id: uuid.UUID = Field(
        description="The service's id.")
    number: str = Field(
        description="The service's number in the catalog (SVC and seven digits).",
        examples=["SVC0000003"])
    name: str = Field(description="The slug every event of the other services carries.")
    title: str | None = Field(
        description="The display name; null when none was given.")
    description: str = Field(
        description="What the service does; empty when unset.")
    tier: int | None = Field(description="1 (most critical) to 4; null when not declared.")
    lifecycle: Lifecycle | None = Field(
        description="experimental, production or deprecated; null when not declared.")
    owner_team: str | None = Field(description="The developers' team; null: unowned.")
    operations_team: str | None = Field(description="The application management team.")
    unowned: bool = Field(description="No owner team is written down for it.")
    repository: str | None = Field(
        description="The source repository (host/owner/name); null when unknown.")
    ci_environments: list[str] = Field(
        description="Where CI jobs of its repository may deploy it; empty: anywhere.")
    system: str | None = Field(
        description="The system it is part of; null for none.")
    runbook_url: str | None = Field(
        description="Where the runbook is; null for none.")
    links: list[LinkPublic] = Field(
        description="Links worth having at hand in an incident.")
    on_call: str | None = Field(
        description="Who to call, such as pagerduty:PABC123; null for nobody named.")
    source: Literal["api", "import", "discovered"] = Field(
        description="How it entered the catalog; discovered: first named by another "
                    "service's event, registered by itself.")
    version: int = Field(
        description="The version to send as If-Match with a change; each change adds one.")
    created_at: datetime = Field(
        description="When it entered the catalog.")
    updated_at: datetime = Field(
        description="When it last changed.")


ServicesPage = Page[ServicePublic]


class TeamCreate(Input):
    name: CatalogName = Field(
        description="The team's name, as services name it (lowercase, digits and dashes).",
        examples=["payments"])
    title: str | None = Field(
        description="The team's display name; null shows its name.",
        examples=["Payments team"],
        default=None, max_length=200)
    description: str = Field(
        description="What the team does; empty when unset.",
        examples=["Builds and runs card payments and refunds."],
        default="", max_length=10000)
    members: list[Member] = Field(
        examples=[["alice", "bob"]],
        default_factory=list, max_length=MEMBERS_MAX,
        description="Token subs of the people in the team.")
    notify: Notify | None = Field(
        default=None,
        description="Where the team's notifications go; null for none.",
        examples=[NOTIFY_EXAMPLE])


class TeamUpdate(Input, Patch):
    """A PATCH: ``members`` replaces the list."""

    never_null = ("description", "members")

    title: str | None = Field(
        description="A new display name.",
        examples=["Payments team"],
        default=None, max_length=200)
    description: str | None = Field(
        description="A new description.",
        examples=["Builds and runs card payments."],
        default=None, max_length=10000)
    members: list[Member] | None = Field(
        description="The people in the team (their token subs), replacing the list.",
        examples=[["alice", "bob", "carol"]],
        default=None, max_length=MEMBERS_MAX)
    notify: Notify | None = Field(
        default=None,
        description="Where the team's notifications go; null stops them.",
        examples=[NOTIFY_EXAMPLE])


class NotifyPublic(BaseModel):
    url: str = Field(
        description="The webhook address the team's notifications go to.")
    format: NotifyFormat = Field(
        description="cloudevents or slack.")


class TeamPublic(BaseModel):
    """A team as the API returns it and every event carries it."""

    id: uuid.UUID = Field(
        description="The team's id.")
    number: str = Field(
        description="The team's number in the catalog (TEAM and seven digits).")
    name: str = Field(
        description="The team's name, as services name it.")
    title: str | None = Field(
        description="The display name; null when none was given.")
    description: str = Field(
        description="What the team does; empty when unset.")
    members: list[str] = Field(description="Token subs, sorted.")
    notify: NotifyPublic | None = Field(
        description="Where its notifications go; null for none.")
    source: Literal["api", "import", "named"] = Field(
        description="named: created because a descriptor named it (no members yet).")
    version: int = Field(
        description="The version to send as If-Match with a change; each change adds one.")
    created_at: datetime = Field(
        description="When it entered the catalog.")
    updated_at: datetime = Field(
        description="When it last changed.")


TeamsPage = Page[TeamPublic]


class Outcome(BaseModel):
    """What an import did to one kind of entry, by name."""

    created: list[str] = Field(
        description="The names of the entries created.",
        default_factory=list)
    updated: list[str] = Field(
        description="The names of the entries changed.",
        default_factory=list)
    unchanged: list[str] = Field(
        description="The names of the entries already as described.",
        default_factory=list)


class IgnoredDocument(BaseModel):
    document: int = Field(
        description="The document's position in the upload, from 1.")
    kind: str = Field(
        description="Its Backstage kind (API, Resource, Domain, ...).")
    name: str | None = Field(
        description="Its metadata.name; null when it has none.")


class ImportResult(BaseModel):
    """``POST /api/v1/catalog/import``: what the descriptors changed (nothing, the second
    time)."""

    documents: int = Field(
        description="How many YAML documents the upload held.")
    services: Outcome = Field(
        description="What the import did to services (Components).")
    teams: Outcome = Field(
        description="What the import did to teams (Groups).")
    systems: list[str] = Field(description="Systems described (services name them).")
    ignored: list[IgnoredDocument] = Field(
        description="Documents of Backstage kinds the catalog takes nothing from.")
    changed: bool = Field(description="Whether anything was created or updated.")


class RevocationCreate(BaseModel):
    """Revoke a token by its ``jti``; ``expires_at`` (the token's ``exp``) bounds how long it is
    kept, else the longest lifetime a token may have from now."""

    model_config = ConfigDict(extra="forbid")

    jti: str = Field(
        description="The token's id (its jti claim).",
        examples=["8c2363df368444669359a12d6142267e"],
        min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$")
    expires_at: Moment | None = Field(
        examples=["2026-12-02T15:00:00Z"],
        default=None, description="The token's exp, with its time zone.")
    reason: str = Field(
        description="Why it is revoked, for the record.",
        examples=["Laptop lost; token was on it"],
        default="", max_length=2000)


class RevocationPublic(BaseModel):
    """A revoked token as the API returns it and the revocation event carries it."""

    id: uuid.UUID = Field(
        description="The revocation's id.")
    number: str = Field(
        description="The revocation's number (REV and seven digits).")
    jti: str = Field(
        description="The revoked token's id (its jti claim).")
    expires_at: datetime = Field(description="Refused until then (the token's exp).")
    reason: str = Field(
        description="Why it was revoked; empty when not said.")
    version: int = Field(
        description="The version of the record; each change adds one.")
    created_at: datetime = Field(
        description="When the token was revoked.")
    updated_at: datetime = Field(
        description="When the record last changed.")


RevocationsPage = Page[RevocationPublic]
