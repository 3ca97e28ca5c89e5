"""The CLI's configuration: profiles of service URLs and a token in ``config.toml``.

The file is ``$TANDEM_CONFIG``, else ``$XDG_CONFIG_HOME/tandem/config.toml``, else
``~/.config/tandem/config.toml``. It is optional; without it every command talks to the
embedded stack on 127.0.0.1. A profile names the URLs of the services and the token::

    profile = "staging"              # the profile used when none is named (else "default")

    [profiles.default]
    token = "eyJ..."

    [profiles.staging]
    token_file = "~/.config/tandem/staging.token"
    urls = { incidents = "https://incidents.staging.example.org",
             deployments = "https://deployments.staging.example.org" }

Which profile: ``--profile`` on the command line, else ``TANDEM_PROFILE``, else the file's
``profile``, else ``default``. The environment still wins over any profile:
``TANDEM_URL_<SERVICE>`` for a URL, ``TANDEM_TOKEN`` for the token.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_PROFILE = "default"

#: Set by the root ``--profile`` option before a command runs.
_chosen_profile: str | None = None


class ConfigError(Exception):
    """The configuration cannot be used as written (a usage error: exit 2)."""


def choose_profile(name: str | None) -> None:
    global _chosen_profile
    _chosen_profile = name


def config_path() -> Path:
    if explicit := os.environ.get("TANDEM_CONFIG"):
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "tandem" / "config.toml"


@dataclass(frozen=True)
class Profile:
    """What a command uses to reach Tandem, and where each value came from."""

    name: str
    path: Path
    urls: dict[str, str] = field(default_factory=dict)
    token: str | None = None
    #: ``TANDEM_TOKEN``, ``profile <name>`` or ``none``.
    token_source: str = "none"

    def url_source(self, service: str) -> str:
        if os.environ.get(f"TANDEM_URL_{service.upper()}"):
            return f"TANDEM_URL_{service.upper()}"
        return f"profile {self.name}" if service in self.urls else "embedded default"


def _read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None


def _profile_table(document: dict[str, Any], name: str, path: Path,
                   named: bool) -> dict[str, Any]:
    profiles = document.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError(f"{path}: profiles must be a table of profiles")
    table = profiles.get(name)
    if table is None:
        if named:
            known = ", ".join(sorted(profiles)) or "none"
            raise ConfigError(f"no profile {name!r} in {path} (profiles: {known})")
        return {}
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: profiles.{name} must be a table")
    return table


def load_profile() -> Profile:
    """The profile in force, with the environment's URLs and token over it."""
    path = config_path()
    document = _read_file(path)
    env_profile = os.environ.get("TANDEM_PROFILE") or None
    file_profile = document.get("profile")
    if file_profile is not None and not isinstance(file_profile, str):
        raise ConfigError(f"{path}: profile must be a profile's name")
    name = _chosen_profile or env_profile or file_profile or DEFAULT_PROFILE
    table = _profile_table(document, name, path, named=name != DEFAULT_PROFILE)
    urls = table.get("urls", {})
    if not isinstance(urls, dict) or not all(isinstance(v, str) for v in urls.values()):
        raise ConfigError(f"{path}: profiles.{name}.urls must map service names to URLs")
    from tandem.settings import SERVICES

    unknown = sorted(set(urls) - set(SERVICES))
    if unknown:
        raise ConfigError(f"{path}: profiles.{name}.urls names no service {', '.join(unknown)} "
                          f"(services: {', '.join(sorted(SERVICES))})")
    token, source = _token(table, name, path)
    return Profile(name=name, path=path, urls={k: v.rstrip("/") for k, v in urls.items()},
                   token=token, token_source=source)


def _token(table: dict[str, Any], name: str, path: Path) -> tuple[str | None, str]:
    if env_token := os.environ.get("TANDEM_TOKEN", "").strip():
        return env_token, "TANDEM_TOKEN"
    if isinstance(token := table.get("token"), str) and token.strip():
        return token.strip(), f"profile {name}"
    if isinstance(token_file := table.get("token_file"), str):
        token_path = Path(token_file).expanduser()
        try:
            return token_path.read_text().strip() or None, f"profile {name} ({token_path})"
        except OSError as exc:
            raise ConfigError(f"{path}: profiles.{name}.token_file {token_path}: "
                              f"{exc.strerror}") from None
    return None, "none"
