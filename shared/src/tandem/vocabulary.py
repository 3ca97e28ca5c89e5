"""Domain words every service shares (contract and domain reference)."""

from __future__ import annotations

from enum import StrEnum


class Environment(StrEnum):
    """Deployment tiers, as users' pipelines name them."""

    production = "production"
    staging = "staging"
    testing = "testing"
    development = "development"
