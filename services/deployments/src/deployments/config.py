"""Settings of the deployments service (``TANDEM_DEPLOYMENTS_*``, and ``TANDEM_GATE_MODE``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar

from fastapi import Depends
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from deployments.rules.gate import GateMode
from tandem.app import service_settings
from tandem.dora import BucketTable
from tandem.settings import ServiceSettings, parse_routing_keys

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


DEFAULT_ENVIRONMENT_MAP = (
    "production=production,prod=production,live=production,prd=production,"
    "staging=staging,stage=staging,stg=staging,preprod=staging,pre-production=staging,"
    "testing=testing,test=testing,qa=testing,uat=testing,"
    "development=development,dev=development,review=development,preview=development"
)


def parse_environment_map(value: str) -> dict[str, str]:
    """``"prod=production,qa=testing"`` -> ``{"prod": "production", "qa": "testing"}``."""
    out: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in value.split(","))):
        name, sep, environment = pair.partition("=")
        if not sep or not name.strip() or environment.strip() not in _ENVIRONMENTS:
            raise ValueError(f"environment map entry {pair!r} is not name=environment (one of "
                             f"{', '.join(_ENVIRONMENTS)})")
        out[name.strip().lower()] = environment.strip()
    return out


_ENVIRONMENTS = ("production", "staging", "testing", "development")



class DeploymentsSettings(ServiceSettings):
    """The deployments service's own settings (its database among them)."""

    service: ClassVar[str] = "deployments"
    model_config = SettingsConfigDict(env_prefix="TANDEM_DEPLOYMENTS_", extra="ignore",
                                      populate_by_name=True)

    #: The contract names this one ``TANDEM_GATE_MODE`` (no service prefix).
    gate_mode: GateMode = Field(
        default=GateMode.receipt,
        validation_alias=AliasChoices("TANDEM_GATE_MODE", "gate_mode"),
    )
    #: DORA buckets as JSON (``TANDEM_DEPLOYMENTS_DORA_BUCKETS``); defaults to DORA 2023.
    dora_buckets: BucketTable = Field(default_factory=BucketTable)
    #: Length of the planned window of a change the gate asks for.
    change_window_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    #: Longest ``?wait=`` a gate read may hold.
    max_gate_wait_s: float = Field(default=60.0, gt=0, le=300)
    #: While a gate read waits: re-read that often in case another replica decided it.
    gate_recheck_s: float = Field(default=5.0, gt=0, le=60)
    #: The secret of the GitHub webhook (``X-Hub-Signature-256``); empty: the endpoint
    #: refuses every delivery.
    github_secret: SecretStr = SecretStr("")
    #: The secret token of the GitLab webhook (``X-Gitlab-Token``); empty: refuses all.
    gitlab_token: SecretStr = SecretStr("")
    #: A sender's environment name -> Tandem's (``name=environment``, comma-separated; names
    #: compared in lower case). GitLab's ``environment_tier`` is used when it names a tier.
    environment_map: str = DEFAULT_ENVIRONMENT_MAP
    #: PagerDuty routing keys of change events (``key=service[@environment]``); by default
    #: the same pairs as the incidents service's monitor keys.
    routing_keys: str = Field(default="", validation_alias=AliasChoices(
        "TANDEM_DEPLOYMENTS_ROUTING_KEYS", "TANDEM_INCIDENTS_ROUTING_KEYS", "routing_keys"))

    @field_validator("routing_keys")
    @classmethod
    def _routing_keys_parse(cls, value: str) -> str:
        parse_routing_keys(value)
        return value

    @field_validator("environment_map")
    @classmethod
    def _environment_map_parse(cls, value: str) -> str:
        parse_environment_map(value)
        return value

    def routes(self) -> dict[str, tuple[str, str]]:
        """Routing key -> (service, environment)."""
        return parse_routing_keys(self.routing_keys)

    def environment_of(self, name: str) -> str | None:
        """Tandem's environment for a sender's environment name, or None when unmapped."""
        return parse_environment_map(self.environment_map).get(name.strip().lower())


#: The running service's settings, as a route dependency.
Settings = Annotated[DeploymentsSettings, Depends(service_settings)]
