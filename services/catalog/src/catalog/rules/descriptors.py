"""Backstage descriptors read into what the catalog should hold: pure, every problem named.

A request holds one or many YAML documents (``---`` between them), as ``catalog-info.yaml``
files do. The kinds the catalog takes:

- ``Component`` -> a service: ``metadata.name``, ``metadata.title``, ``metadata.description``,
  ``spec.owner`` (the owner team), ``spec.lifecycle`` (experimental|production|deprecated),
  ``spec.system``, ``metadata.links``; annotations ``tandem.dev/operations-team``,
  ``tandem.dev/tier`` (1-4), ``tandem.dev/runbook``, ``tandem.dev/on-call`` (else
  ``pagerduty.com/service-id`` as ``pagerduty:<id>``), ``github.com/project-slug`` (or
  ``gitlab.com/project-slug``, else a GitHub or GitLab ``backstage.io/source-location``) ->
  ``repository: github.com/<slug>``;
- ``Group`` -> a team: ``spec.members`` (user references) and the members of ``spec.children``,
  ``metadata.title`` (else ``spec.profile.displayName``), annotations ``tandem.dev/notify`` (a
  webhook URL) and ``tandem.dev/notify-format`` (cloudevents|slack);
- ``User`` -> a member of each team in its ``spec.memberOf``;
- ``System`` -> its ``spec.owner`` is a team (services name the system in ``spec.system``).

Backstage's other kinds (API, Resource, Domain, Location, Template) are accepted and left out;
anything else is refused. A team a document names that no Group describes is created with no
members (by the operation, which knows what the catalog holds).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from catalog.errors import DescriptorProblem, DescriptorsInvalid
from catalog.rules.names import entity_name, member_name, name_problem

#: Every kind of Backstage's catalog model.
BACKSTAGE_KINDS = ("Component", "Group", "System", "User", "API", "Resource", "Domain",
                   "Location", "Template")
#: The kinds the catalog takes something from; the others are accepted and left out.
IMPORTED_KINDS = ("Component", "Group", "System", "User")
LIFECYCLES = ("experimental", "production", "deprecated")
NOTIFY_FORMATS = ("cloudevents", "slack")
TIERS = (1, 2, 3, 4)

TITLE_MAX = 200
DESCRIPTION_MAX = 10000
URL_MAX = 2000
LINKS_MAX = 50
MEMBERS_MAX = 1000

_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$")
_SLUG = re.compile(r"^[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+$")
_SOURCE = re.compile(r"^(?:url:)?https?://(?P<host>github\.com|gitlab\.com)/"
                     r"(?P<slug>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)")

ANNOTATION_TIER = "tandem.dev/tier"
ANNOTATION_OPERATIONS = "tandem.dev/operations-team"
ANNOTATION_RUNBOOK = "tandem.dev/runbook"
ANNOTATION_ON_CALL = "tandem.dev/on-call"
ANNOTATION_NOTIFY = "tandem.dev/notify"
ANNOTATION_NOTIFY_FORMAT = "tandem.dev/notify-format"


@dataclass(frozen=True)
class ServiceEntry:
    """A service as a Component describes it (every field the catalog maps)."""

    name: str
    title: str | None
    description: str
    tier: int | None
    lifecycle: str
    owner_team: str
    operations_team: str | None
    repository: str | None
    system: str | None
    runbook_url: str | None
    links: tuple[tuple[str, str | None], ...]
    on_call: str | None

    def fields(self) -> dict[str, Any]:
        """The service's catalog fields, as the table holds them."""
        return {"title": self.title, "description": self.description, "tier": self.tier,
                "lifecycle": self.lifecycle, "owner_team": self.owner_team,
                "operations_team": self.operations_team, "repository": self.repository,
                "system": self.system, "runbook_url": self.runbook_url,
                "links": [{"url": url, "title": title} for url, title in self.links],
                "on_call": self.on_call}


@dataclass(frozen=True)
class TeamEntry:
    """A team as a Group describes it; ``children`` lend it their members."""

    name: str
    title: str | None
    description: str
    members: frozenset[str]
    children: tuple[str, ...]
    notify: dict[str, str] | None


@dataclass(frozen=True)
class Ignored:
    """A document of a Backstage kind the catalog takes nothing from."""

    document: int
    kind: str
    name: str | None


@dataclass
class ImportPlan:
    """What the documents of one request say the catalog should hold."""

    documents: int = 0
    services: list[ServiceEntry] = field(default_factory=list)
    teams: list[TeamEntry] = field(default_factory=list)
    #: Members that User documents add to teams (``spec.memberOf``).
    memberships: dict[str, set[str]] = field(default_factory=dict)
    #: Every team a document names (owners, operations teams, children, memberOf, systems').
    named_teams: set[str] = field(default_factory=set)
    systems: list[str] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)


class _DescriptorLoader(yaml.SafeLoader):
    """YAML without aliases: ``*ref`` expands shared structure exponentially, and descriptors
    never need it."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases (*name) are not accepted in descriptors",
                event.start_mark)
        return super().compose_node(parent, index)


def read_documents(text: str, *, max_documents: int) -> list[Any]:
    """The YAML documents of ``text`` (empty ones dropped); a syntax error is a problem of the
    document it is in, with its line."""
    documents: list[Any] = []
    seen = 0
    loader: _DescriptorLoader | None = None
    try:
        # The reader checks the characters as it is built: inside, so a refusal is a problem.
        loader = _DescriptorLoader(text)
        while loader.check_data():
            seen += 1
            if seen > max_documents:
                raise DescriptorsInvalid([DescriptorProblem(
                    seen, None, "", f"an import holds at most {max_documents} documents")])
            documents.append(loader.get_data())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        reason = getattr(exc, "problem", None) or getattr(exc, "reason", None) or str(exc)
        raise DescriptorsInvalid([DescriptorProblem(
            max(seen, 1), None, "", f"not valid YAML{where}: {reason}")]) from None
    except RecursionError:
        raise DescriptorsInvalid([DescriptorProblem(
            max(seen, 1), None, "", "nested too deeply to be a descriptor")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    found = [d for d in documents if d is not None]
    if not found:
        raise DescriptorsInvalid([DescriptorProblem(
            1, None, "", "holds no descriptor: send one or more Backstage entity documents")])
    return found


class _Reader:
    """Reads the fields of one document, noting each problem with where it is."""

    def __init__(self, number: int, document: dict[str, Any],
                 problems: list[DescriptorProblem]) -> None:
        self.number = number
        self.document = document
        self.problems = problems
        name = _get(document, "metadata.name")
        self.name = name if isinstance(name, str) and len(name) <= 255 else None
        #: Whether the envelope is sound (only then does the document enter the plan).
        self.sound = True

    def problem(self, path: str, message: str) -> None:
        self.problems.append(DescriptorProblem(self.number, self.name, path, message))

    def mapping(self, path: str, *, required: bool = False) -> dict[str, Any]:
        value = _get(self.document, path)
        if value is None:
            if required:
                self.problem(path, "is required")
            return {}
        if not isinstance(value, dict):
            self.problem(path, "must be a mapping")
            return {}
        return value

    def text(self, path: str, limit: int, *, required: bool = False,
             value: Any = None, given: bool = False) -> str | None:
        value = value if given else _get(self.document, path)
        if value is None or value == "":
            if required:
                self.problem(path, "is required")
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            self.problem(path, "must be text")
            return None
        if (why := _unstorable(value)) is not None:
            self.problem(path, why)
            return None
        value = value.strip()
        if len(value) > limit:
            self.problem(path, f"must be at most {limit} characters")
            return None
        return value or None

    def url(self, path: str, value: Any) -> str | None:
        text = self.text(path, URL_MAX, value=value, given=True)
        if text is not None and not _URL.match(text):
            self.problem(path, "must be an http(s) URL")
            return None
        return text

    def ref(self, path: str, value: Any, *, kind: str, required: bool = False) -> str | None:
        if value is None and not required:
            return None
        name, why = entity_name(value, kind=kind)
        if why is not None:
            self.problem(path, why if value is not None else "is required")
        return name

    def refs(self, path: str, *, kind: str) -> list[str]:
        value = _get(self.document, path)
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(path, "must be a list")
            return []
        found = [self.ref(f"{path}[{i}]", item, kind=kind, required=True)
                 for i, item in enumerate(value)]
        return [n for n in found if n is not None]

    def members(self, path: str) -> set[str]:
        value = _get(self.document, path)
        if value is None:
            return set()
        if not isinstance(value, list):
            self.problem(path, "must be a list")
            return set()
        if len(value) > MEMBERS_MAX:
            self.problem(path, f"must list at most {MEMBERS_MAX} members")
            return set()
        out: set[str] = set()
        for i, item in enumerate(value):
            member, why = member_name(item)
            if why is not None:
                self.problem(f"{path}[{i}]", why)
            elif member is not None:
                out.add(member)
        return out


def plan_import(documents: list[Any]) -> ImportPlan:
    """What ``documents`` say the catalog should hold; :class:`DescriptorsInvalid` naming
    every document and field that is wrong (then nothing of them is imported)."""
    plan = ImportPlan(documents=len(documents))
    problems: list[DescriptorProblem] = []
    services: dict[str, int] = {}
    teams: dict[str, int] = {}
    for number, document in enumerate(documents, start=1):
        if not isinstance(document, dict):
            problems.append(DescriptorProblem(number, None, "", "must be a mapping (a Backstage "
                                                                "entity: apiVersion, kind, "
                                                                "metadata, spec)"))
            continue
        reader = _Reader(number, document, problems)
        kind, sound = _envelope(reader)
        if kind is None:
            continue
        if kind not in IMPORTED_KINDS:
            if sound:
                plan.ignored.append(Ignored(number, kind, reader.name))
            continue
        # A document with a bad envelope is still read, so every problem is named at once;
        # nothing of it enters the plan.
        reader.sound = sound
        if kind == "Component":
            service = _component(reader)
            if service is not None and _unique(reader, services, service.name, "Component"):
                plan.services.append(service)
                plan.named_teams.add(service.owner_team)
                if service.operations_team:
                    plan.named_teams.add(service.operations_team)
        elif kind == "Group":
            team = _group(reader)
            if team is not None and _unique(reader, teams, team.name, "Group"):
                plan.teams.append(team)
                plan.named_teams.update(team.children)
        elif kind == "User":
            user, groups = _user(reader)
            for group in groups if reader.sound else ():
                plan.memberships.setdefault(group, set()).add(user)
                plan.named_teams.add(group)
        else:
            owner = _system(reader)
            if owner is not None and reader.name is not None and reader.sound:
                plan.systems.append(reader.name)
                plan.named_teams.add(owner)
    if problems:
        raise DescriptorsInvalid(problems)
    return plan


def _envelope(reader: _Reader) -> tuple[str | None, bool]:
    """The document's kind (None: not a Backstage kind), and whether its envelope
    (apiVersion, kind, metadata.name) is sound."""
    api_version = reader.document.get("apiVersion")
    kind = reader.document.get("kind")
    sound = True
    if not isinstance(api_version, str) or not api_version.startswith("backstage.io/"):
        reader.problem("apiVersion", "must be a Backstage API version (backstage.io/v1alpha1)")
        sound = False
    if kind not in BACKSTAGE_KINDS:
        shown = kind if isinstance(kind, str) and len(kind) <= 64 else "this"
        others = ", ".join(k for k in BACKSTAGE_KINDS if k not in IMPORTED_KINDS)
        reader.problem("kind", f"{shown!s} is not a Backstage kind; the catalog takes "
                               f"{', '.join(IMPORTED_KINDS)} (and accepts {others})")
        sound = False
    if not isinstance(reader.document.get("metadata", {}), dict):
        reader.problem("metadata", "must be a mapping")
    name = _get(reader.document, "metadata.name")
    if (why := name_problem(name)) is not None:
        reader.problem("metadata.name", why if name is not None else "is required")
        sound = False
    return (kind if kind in BACKSTAGE_KINDS else None), sound  # type: ignore[return-value]


def _unique(reader: _Reader, seen: dict[str, int], name: str, kind: str) -> bool:
    if name in seen:
        reader.problem("metadata.name", f"{kind} {name} is already described by document "
                                        f"{seen[name]}")
        return False
    seen[name] = reader.number
    return True


def _annotations(reader: _Reader) -> dict[str, Any]:
    annotations = reader.mapping("metadata.annotations")
    for key in annotations:
        if not isinstance(key, str):
            reader.problem("metadata.annotations", "keys must be text")
            return {}
    return annotations


def _component(reader: _Reader) -> ServiceEntry | None:
    annotations = _annotations(reader)
    spec = reader.mapping("spec", required=True)
    lifecycle = spec.get("lifecycle")
    if lifecycle not in LIFECYCLES:
        reader.problem("spec.lifecycle", "is required" if lifecycle is None else
                       f"must be one of {', '.join(LIFECYCLES)}")
    owner = reader.ref("spec.owner", spec.get("owner"), kind="group", required=True)
    tier = _tier(reader, annotations.get(ANNOTATION_TIER))
    operations = reader.ref(f"metadata.annotations.{ANNOTATION_OPERATIONS}",
                            annotations.get(ANNOTATION_OPERATIONS), kind="group")
    runbook = reader.url(f"metadata.annotations.{ANNOTATION_RUNBOOK}",
                         annotations.get(ANNOTATION_RUNBOOK))
    on_call = reader.text(f"metadata.annotations.{ANNOTATION_ON_CALL}", 255,
                          value=annotations.get(ANNOTATION_ON_CALL), given=True)
    pagerduty = reader.text("metadata.annotations.pagerduty.com/service-id", 200,
                            value=annotations.get("pagerduty.com/service-id"), given=True)
    system = reader.ref("spec.system", spec.get("system"), kind="system")
    links = _links(reader)
    title = reader.text("metadata.title", TITLE_MAX)
    description = reader.text("metadata.description", DESCRIPTION_MAX) or ""
    repository = _repository(reader, annotations)
    if owner is None or lifecycle not in LIFECYCLES or reader.name is None or not reader.sound:
        return None
    return ServiceEntry(
        name=reader.name, title=title, description=description, tier=tier,
        lifecycle=lifecycle, owner_team=owner, operations_team=operations,
        repository=repository, system=system, runbook_url=runbook, links=links,
        on_call=on_call or (f"pagerduty:{pagerduty}" if pagerduty else None))


def _tier(reader: _Reader, value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        tier = int(str(value).strip())
    except ValueError:
        tier = 0
    if isinstance(value, bool) or tier not in TIERS:
        reader.problem(f"metadata.annotations.{ANNOTATION_TIER}",
                       "must be a tier from 1 (most critical) to 4")
        return None
    return tier


def _links(reader: _Reader) -> tuple[tuple[str, str | None], ...]:
    value = _get(reader.document, "metadata.links")
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > LINKS_MAX:
        reader.problem("metadata.links", f"must be a list of at most {LINKS_MAX} links")
        return ()
    links = []
    for i, link in enumerate(value):
        if not isinstance(link, dict):
            reader.problem(f"metadata.links[{i}]", "must be a mapping with a url")
            continue
        url = reader.url(f"metadata.links[{i}].url", link.get("url"))
        if link.get("url") is None:
            reader.problem(f"metadata.links[{i}].url", "is required")
        title = reader.text(f"metadata.links[{i}].title", TITLE_MAX, value=link.get("title"),
                            given=True)
        if url is not None:
            links.append((url, title))
    return tuple(links)


def _repository(reader: _Reader, annotations: dict[str, Any]) -> str | None:
    for host in ("github.com", "gitlab.com"):
        key = f"{host}/project-slug"
        slug = reader.text(f"metadata.annotations.{key}", 200, value=annotations.get(key),
                           given=True)
        if slug is None:
            continue
        if not _SLUG.match(slug):
            reader.problem(f"metadata.annotations.{key}", "must be <owner>/<repository>")
            return None
        return f"{host}/{slug}"
    location = annotations.get("backstage.io/source-location")
    if isinstance(location, str) and (match := _SOURCE.match(location.strip())):
        return f"{match['host']}/{match['slug'].removesuffix('.git')}"
    return None


def _group(reader: _Reader) -> TeamEntry | None:
    annotations = _annotations(reader)
    spec = reader.mapping("spec")
    members = reader.members("spec.members")
    children = reader.refs("spec.children", kind="group")
    title = reader.text("metadata.title", TITLE_MAX)
    if title is None:
        title = reader.text("spec.profile.displayName", TITLE_MAX)
    description = reader.text("metadata.description", DESCRIPTION_MAX) or ""
    if "profile" in spec and not isinstance(spec["profile"], dict):
        reader.problem("spec.profile", "must be a mapping")
    notify = None
    url = reader.url(f"metadata.annotations.{ANNOTATION_NOTIFY}",
                     annotations.get(ANNOTATION_NOTIFY))
    form = annotations.get(ANNOTATION_NOTIFY_FORMAT, "cloudevents")
    if form not in NOTIFY_FORMATS:
        reader.problem(f"metadata.annotations.{ANNOTATION_NOTIFY_FORMAT}",
                       f"must be one of {', '.join(NOTIFY_FORMATS)}")
    elif url is not None:
        notify = {"url": url, "format": str(form)}
    if reader.name is None or not reader.sound:
        return None
    if reader.name in children:
        reader.problem("spec.children", "a team cannot be its own child")
    return TeamEntry(name=reader.name, title=title, description=description,
                     members=frozenset(members), children=tuple(dict.fromkeys(children)),
                     notify=notify)


def _user(reader: _Reader) -> tuple[str, list[str]]:
    reader.mapping("spec")
    groups = reader.refs("spec.memberOf", kind="group")
    return reader.name or "", groups


def _system(reader: _Reader) -> str | None:
    spec = reader.mapping("spec", required=True)
    return reader.ref("spec.owner", spec.get("owner"), kind="group", required=True)


def team_members(name: str, plan: ImportPlan, stored: dict[str, frozenset[str]]) -> set[str]:
    """A described team's members: its own, those its Users name it in, and its children's
    (described in ``plan`` or as ``stored``), each team counted once."""
    described = {t.name: t for t in plan.teams}
    seen: set[str] = set()

    def gather(team: str) -> Iterator[str]:
        if team in seen:
            return
        seen.add(team)
        yield from plan.memberships.get(team, ())
        entry = described.get(team)
        if entry is None:
            yield from stored.get(team, ())
            return
        yield from entry.members
        for child in entry.children:
            yield from gather(child)

    return set(gather(name))


def _get(document: Any, path: str) -> Any:
    value = document
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _unstorable(text: str) -> str | None:
    if "\x00" in text:
        return "must not contain NUL characters"
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        return "must be valid Unicode text (an unpaired surrogate is not)"
    return None
