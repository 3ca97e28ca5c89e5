"""Domain words every service shares (contract and domain reference)."""

from __future__ import annotations

import re
from enum import StrEnum

#: A service's or team's name as every service accepts it: lower case letters, digits, ``.``,
#: ``_`` and ``-`` (the catalog gives names it registers a stricter form of its own).
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"


class Environment(StrEnum):
    """Deployment tiers, as users' pipelines name them."""

    production = "production"
    staging = "staging"
    testing = "testing"
    development = "development"


def repository_name(text: str) -> str:
    """A repository as Tandem compares them: ``github.com/acme/payments`` (no scheme, no
    ``.git``, lower case), whichever way the catalog or a token wrote it."""
    name = text.strip().lower()
    for prefix in ("https://", "http://", "ssh://", "git@"):
        name = name.removeprefix(prefix)
    host, colon, path = name.partition(":")
    if colon and "/" not in host:  # git@github.com:acme/payments
        name = f"{host}/{path}"
    return name.removesuffix("/").removesuffix(".git")


def as_name(text: str) -> str:
    """``text`` in the form of a service's name (``Payments API`` -> ``payments-api``); empty
    when nothing of it is left."""
    return re.sub(r"[^a-z0-9._-]+", "-", text.strip().lower()).strip("-._")
