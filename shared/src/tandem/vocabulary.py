"""Domain words every service shares (contract and domain reference)."""

from __future__ import annotations

from enum import StrEnum


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
