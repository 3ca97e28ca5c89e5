"""Names in the catalog and references to them, after Backstage's rules as Tandem holds them.

A service or team name is what every event carries, so it is kept plain: lowercase letters and
digits in groups joined by single hyphens, at most 63 characters (``payments-api``). References
are Backstage's entity references, ``[<kind>:][<namespace>/]<name>`` (``group:default/payments``);
Tandem has one namespace, ``default``.
"""

from __future__ import annotations

import re

from tandem import vocabulary

NAME_MAX = 63
NAME_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
_NAME = re.compile(NAME_PATTERN)
_REF = re.compile(r"^(?:(?P<kind>[A-Za-z]+):)?(?:(?P<namespace>[^/:]+)/)?(?P<name>[^/:]+)$")
#: What the other services accept as a service name (a name first seen in their events).
OBSERVED_NAME = re.compile(vocabulary.NAME_PATTERN)
OBSERVED_NAME_MAX = 100
_OTHER_KIND = re.compile(r"^(group|component|system|api|resource|domain|location|template):")


def name_problem(value: object) -> str | None:
    """Why ``value`` is not a catalog name, or None when it is one."""
    if not isinstance(value, str) or not value:
        return "must be a name: lowercase letters, digits and hyphens"
    if len(value) > NAME_MAX:
        return f"must be at most {NAME_MAX} characters"
    if not _NAME.match(value):
        return ("must be lowercase letters and digits, in groups joined by single hyphens "
                "(Backstage's naming rule)")
    return None


def observed_name(value: object) -> bool:
    """Whether another service's event may name a service ``value`` (their own rule)."""
    return (isinstance(value, str) and len(value) <= OBSERVED_NAME_MAX
            and OBSERVED_NAME.match(value) is not None)


def entity_name(value: object, *, kind: str) -> tuple[str | None, str | None]:
    """``(name, None)`` for a reference to an entity of ``kind`` (``group``), or ``(None, why
    not)``: another kind, another namespace or a name that breaks the rule."""
    if not isinstance(value, str) or not value.strip():
        return None, f"must be a reference to a {kind}, such as {kind}:default/payments"
    match = _REF.match(value.strip())
    if match is None:
        return None, f"is not an entity reference ([{kind}:][default/]<name>)"
    if match["kind"] is not None and match["kind"].lower() != kind:
        return None, f"must refer to a {kind}, not a {match['kind'].lower()}"
    if match["namespace"] not in (None, "default"):
        return None, "Tandem's catalog has one namespace, default"
    name = match["name"]
    problem = name_problem(name)
    return (None, problem) if problem else (name, None)


def member_name(value: object) -> tuple[str | None, str | None]:
    """A team member from a user reference (``user:default/alice`` or ``alice``): the token
    ``sub`` the person acts as, 1 to 255 printable characters."""
    if not isinstance(value, str):
        return None, "must be a user reference (a name, or user:default/<name>)"
    text = value.strip()
    lowered = text.lower()
    if _OTHER_KIND.match(lowered):
        return None, f"must refer to a user, not a {lowered.split(':', 1)[0]}"
    for prefix in ("user:", "default/"):
        if lowered.startswith(prefix):
            text, lowered = text[len(prefix):], lowered[len(prefix):]
    if not 1 <= len(text) <= 255 or not text.isprintable() or text != text.strip() \
            or any(ch.isspace() for ch in text):
        return None, "must name a person as their token's sub (1 to 255 printable characters)"
    return text, None
