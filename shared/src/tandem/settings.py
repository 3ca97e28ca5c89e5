"""Platform settings, read from ``TANDEM_*`` environment variables.

Service-specific settings live in each service's ``config.py`` under ``TANDEM_<SERVICE>_``.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from functools import cached_property
from pathlib import Path
from typing import ClassVar

from pydantic_settings import BaseSettings, SettingsConfigDict

#: Every service and its default port (contract section 1).
SERVICES: dict[str, int] = {"incidents": 8001, "changes": 8002, "deployments": 8003,
                            "dashboard": 8004, "catalog": 8005, "notifier": 8006}

#: The services that own a topic (the dashboard only reads).
TOPIC_OWNERS = ("incidents", "changes", "deployments", "catalog", "notifier")


def private_dir(path: Path) -> None:
    """Create ``path`` (and parents) if missing; the directory itself only its owner may enter."""
    path.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(PermissionError):
        path.chmod(0o700)


def private_file(path: Path) -> None:
    """Create ``path`` empty and readable by its owner alone, unless it exists (SQLite keeps
    the mode for its -wal and -shm files)."""
    private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class PlatformSettings(BaseSettings):
    """Settings every Tandem process shares."""

    model_config = SettingsConfigDict(env_prefix="TANDEM_", extra="ignore")

    var_dir: Path = Path("var")
    kafka_bootstrap: str = "127.0.0.1:9092"
    topic_partitions: int = 6
    # Prefix for every topic name; empty in production, unique per test run.
    topic_prefix: str = ""
    kafka_idempotence: bool = False
    kafka_session_timeout_ms: int = 6000
    kafka_heartbeat_interval_ms: int = 2000
    kafka_fetch_max_wait_ms: int = 50
    kafka_request_timeout_ms: int = 10000
    #: ``PLAINTEXT`` (the embedded broker, on loopback), ``SSL`` or ``SASL_SSL`` (production:
    #: TLS, and SCRAM users with ACLs, docs/operations.md).
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None
    #: The cluster's CA certificate (PEM) for TLS; unset, the system's trust store.
    kafka_ssl_cafile: str | None = None
    consumer_max_attempts: int = 3
    #: An event whose sequence is further than this beyond its subject's last applied one is
    #: held for review (a dead letter) instead of making every later real event stale.
    consumer_max_sequence_gap: int = 100_000
    relay_batch_size: int = 500
    #: Published events are kept this long: the history replayed to a broker that lost it.
    outbox_retention_days: float = 30
    #: How often the relay asks the broker whether it still holds what it acknowledged.
    history_check_interval_s: float = 5.0
    relay_poll_interval_s: float = 1.0
    auth_secret: str | None = None
    #: The longest a token may live (``exp - iat``): longer ones are refused.
    auth_max_token_lifetime: str = "90d"
    #: A PEM private key (Ed25519, RSA or P-256) local tokens are signed with, held by the
    #: minter only; unset, they are signed with the shared secret (HS256).
    auth_signing_key_file: Path | None = None
    #: The matching PEM public key: a service given it verifies local tokens with it and
    #: never needs (or reads) the shared secret, so it cannot mint.
    auth_verification_key_file: Path | None = None
    #: The OIDC issuers trusted (JSON list of ``tandem.oidc.OidcIssuer``).
    auth_oidc_issuers: str | None = None
    #: Clock skew allowed on an OIDC issuer's ``exp``, ``nbf`` and ``iat``.
    auth_clock_skew_s: float = 60.0
    #: An issuer's JWKS is fetched again for an unknown ``kid`` at most this often.
    auth_jwks_min_refresh_s: float = 30.0
    #: How often a service re-reads the revoked tokens its replicas recorded.
    auth_revocation_refresh_s: float = 1.0
    log_level: str = "INFO"
    max_body_bytes: int = 1024 * 1024
    #: Drive SQLite on the event loop instead of aiosqlite's thread (``tandem.sqlite_inline``).
    sqlite_inline: bool = True

    def kafka_client_options(self) -> dict[str, object]:
        """What every Kafka client of a process connects with: the broker and its security."""
        options: dict[str, object] = {"bootstrap_servers": self.kafka_bootstrap,
                                      "security_protocol": self.kafka_security_protocol}
        if self.kafka_security_protocol in ("SSL", "SASL_SSL"):
            import ssl

            options["ssl_context"] = ssl.create_default_context(cafile=self.kafka_ssl_cafile)
        if self.kafka_security_protocol.startswith("SASL"):
            options.update(sasl_mechanism=self.kafka_sasl_mechanism,
                           sasl_plain_username=self.kafka_sasl_username,
                           sasl_plain_password=self.kafka_sasl_password)
        return options

    def topic(self, name: str) -> str:
        """The full topic name for ``name`` (``incidents`` -> ``tandem.incidents``)."""
        return f"{self.topic_prefix}tandem.{name}"

    def dlq_topic(self, consuming_service: str) -> str:
        return f"{self.topic_prefix}tandem.{consuming_service}.dlq"

    def all_topics(self) -> list[str]:
        """Each owning service's topic, and a dead-letter topic per consuming service."""
        return [self.topic(s) for s in TOPIC_OWNERS] + [self.dlq_topic(s) for s in SERVICES]

    def group_id(self, consumer: str) -> str:
        return f"{self.topic_prefix}tandem-{consumer}"

    @cached_property
    def jwt_secret(self) -> str:
        """``TANDEM_AUTH_SECRET``, else the embedded default's generated file under ``var/``
        (created readable by its owner alone, in a ``var/`` only its owner may enter)."""
        if self.auth_secret:
            return self.auth_secret
        path = self.var_dir / "auth-secret"
        if not path.exists():
            private_dir(self.var_dir)
            with contextlib.suppress(FileExistsError):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as out:
                    out.write(secrets.token_urlsafe(48))
        return path.read_text().strip()

    @property
    def signing_key(self) -> str:
        """What local tokens are minted with: the private key file's PEM, else the secret."""
        if self.auth_signing_key_file is not None:
            return self.auth_signing_key_file.read_text()
        return self.jwt_secret

    @property
    def verification_key(self) -> str:
        """What local tokens are verified with: the public key file's PEM, else the secret."""
        if self.auth_verification_key_file is not None:
            return self.auth_verification_key_file.read_text()
        return self.jwt_secret

    def default_database_url(self, service: str) -> str:
        return f"sqlite+aiosqlite:///{self.var_dir / f'{service}.db'}"


class ServiceSettings(BaseSettings):
    """The base of every service's own settings (``TANDEM_<SERVICE>_*``).

    A subclass sets ``service`` and its ``model_config`` (the env prefix) and adds its fields::

        class IncidentsSettings(ServiceSettings):
            service: ClassVar[str] = "incidents"
            model_config = SettingsConfigDict(env_prefix="TANDEM_INCIDENTS_", extra="ignore")
    """

    model_config = SettingsConfigDict(extra="ignore")

    #: The service these settings belong to (``incidents``).
    service: ClassVar[str]
    #: ``TANDEM_<SERVICE>_DATABASE_URL``; unset, the embedded default's SQLite file in ``var/``.
    database_url: str | None = None

    def database_url_for(self, platform: PlatformSettings) -> str:
        """The database this service uses under ``platform``."""
        return self.database_url or platform.default_database_url(self.service)


def parse_routing_keys(value: str) -> dict[str, tuple[str, str]]:
    """PagerDuty routing keys of Tandem services (``TANDEM_INCIDENTS_ROUTING_KEYS``, and the
    deployments service's change events): ``"k1=api,k2=web@staging"`` -> ``{"k1": ("api",
    "production"), "k2": ("web", "staging")}``."""
    routes: dict[str, tuple[str, str]] = {}
    for pair in filter(None, (p.strip() for p in value.split(","))):
        key, sep, target = pair.partition("=")
        service, _, environment = target.strip().partition("@")
        if not sep or not key.strip() or not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", service):
            raise ValueError(f"routing key entry {pair!r} is not key=service (a lower-case "
                             "service name)")
        environment = environment or "production"
        if environment not in ("production", "staging", "testing", "development"):
            raise ValueError(f"routing key entry {pair!r} names an unknown environment")
        routes[key.strip()] = (service, environment)
    return routes
