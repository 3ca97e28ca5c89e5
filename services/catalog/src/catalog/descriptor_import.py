"""Backstage descriptor import (``POST /api/v1/catalog/import``): the documents of one request
applied together, in its transaction, so a request imports all of itself or nothing.

The rules (:mod:`catalog.rules.descriptors`) read the documents into a plan and name every
problem; here the plan meets what the catalog holds. A team a document names that the catalog
lacks is created with no members; an entry equal to what is stored is left alone (no event),
so importing the same file twice changes nothing.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from catalog import services, teams
from catalog.config import CatalogSettings
from catalog.events import ServiceCreated
from catalog.rules.descriptors import ImportPlan, plan_import, read_documents, team_members
from catalog.schemas import IgnoredDocument, ImportResult, Outcome


async def import_descriptors(session: AsyncSession, settings: CatalogSettings, text: str, *,
                             actor: str) -> ImportResult:
    """Import the descriptors of ``text``; :class:`~catalog.errors.DescriptorsInvalid` (and
    nothing written) when any document is wrong."""
    plan = plan_import(read_documents(text, max_documents=settings.max_import_documents))
    # New names queue here, so a concurrent import or registration creates each once.
    await services.queue_for_new_names(session, services.catalog_services.number_prefix,
                                       teams.catalog_teams.number_prefix)
    team_outcome = await _apply_teams(session, plan, actor=actor)
    service_outcome = Outcome()
    for entry in plan.services:
        row = await services.service_named(session, entry.name, for_update=True)
        if row is None:
            row = await services.catalog_services.new(session, name=entry.name,
                                                      source="import", **entry.fields())
            await services.catalog_services.record(session, row, ServiceCreated, actor=actor)
            service_outcome.created.append(entry.name)
        elif await services.change_fields(session, row, entry.fields(), actor=actor,
                                          source="import"):
            service_outcome.updated.append(entry.name)
        else:
            service_outcome.unchanged.append(entry.name)
    return ImportResult(
        documents=plan.documents, services=service_outcome, teams=team_outcome,
        systems=plan.systems,
        ignored=[IgnoredDocument(document=i.document, kind=i.kind, name=i.name)
                 for i in plan.ignored],
        changed=any((service_outcome.created, service_outcome.updated, team_outcome.created,
                     team_outcome.updated)))


async def _apply_teams(session: AsyncSession, plan: ImportPlan, *, actor: str) -> Outcome:
    """Described teams take what their Group says; teams only named get what Users add."""
    described = {t.name: t for t in plan.teams}
    names = set(described) | plan.named_teams | set(plan.memberships)
    stored = await teams.teams_named(session, names, for_update=True)
    stored_members = {name: frozenset(row.members) for name, row in stored.items()}
    outcome = Outcome()
    for name in sorted(names):
        row = stored.get(name)
        entry = described.get(name)
        if entry is not None:
            fields = {"title": entry.title, "description": entry.description,
                      "members": teams.members_of(team_members(name, plan, stored_members)),
                      "notify": entry.notify}
            source = "import"
        else:
            added = plan.memberships.get(name, set())
            fields = {"members": teams.members_of([*(row.members if row else ()), *added])}
            source = None if row is not None else "named"
        if row is None:
            await teams.new_team(session, name=name, actor=actor, source=source or "named",
                                 **fields)
            outcome.created.append(name)
        elif await teams.change_fields(session, row, fields, actor=actor, source=source):
            outcome.updated.append(name)
        else:
            outcome.unchanged.append(name)
    return outcome
