"""The standard change catalog (contract section 7): owner-approved templates of repeatable,
low-risk changes per service, each with the longest window it may take. A standard change
recorded from an active template of its service is pre-authorized; a pipeline records a
standard change only that way."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from changes.errors import (
    TemplateForStandardOnly,
    TemplateNotUsable,
    TemplateRequired,
    TemplateUnknown,
    TemplateWindowExceeded,
)
from tandem.errors import DomainError
from tandem.transitions import StateMachine

#: A template is active until an owner retires it; a retired one never comes back.
TEMPLATE_LIFECYCLE = StateMachine("standard change template", {"active": {"retired"},
                                                               "retired": set()})


@dataclass(frozen=True)
class TemplateFacts:
    """A template as the rules need it."""

    id: uuid.UUID
    number: str
    service: str
    status: str
    max_window_minutes: int


def template_refusal(*, change_type: str, service: str, by_pipeline: bool,
                     template_named: bool, template: TemplateFacts | None) -> DomainError | None:
    """Why a change of ``change_type`` of ``service`` may not be recorded with ``template``
    (or without one), or None."""
    if template_named and change_type != "standard":
        return TemplateForStandardOnly()
    if template_named and template is None:
        return TemplateUnknown()
    if template is None:
        return TemplateRequired() if by_pipeline and change_type == "standard" else None
    if template.service != service:
        return TemplateNotUsable(template.number, f"is a template of {template.service}, not "
                                                  f"of {service}")
    if template.status != "active":
        return TemplateNotUsable(template.number, "is retired")
    return None


def templated_window(start: datetime | None, end: datetime | None, template: TemplateFacts,
                     now: datetime) -> tuple[datetime, datetime]:
    """The planned window of a change from ``template``: as given, else from ``now`` for as
    long as the template allows; :class:`TemplateWindowExceeded` when longer."""
    start = start or now
    end = end or start + timedelta(minutes=template.max_window_minutes)
    check_templated_window(start, end, template)
    return start, end


def check_templated_window(start: datetime | None, end: datetime | None,
                           template: TemplateFacts) -> None:
    """:class:`TemplateWindowExceeded` unless the window is within the template's longest."""
    if start is not None and end is not None and \
            end - start > timedelta(minutes=template.max_window_minutes):
        raise TemplateWindowExceeded(template.number, template.max_window_minutes)
