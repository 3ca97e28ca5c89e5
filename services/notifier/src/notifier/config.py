"""Settings of the notifier service (``TANDEM_NOTIFIER_*``), and the ``Settings`` dependency."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar

from fastapi import Depends
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from tandem.app import service_settings
from tandem.settings import ServiceSettings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class NotifierSettings(ServiceSettings):
    """The notifier's own settings; ``database_url`` comes from the base.

    The destination guard (no server-side request forgery): only ``https://`` URLs to public
    addresses, unless a setting below says otherwise.
    """

    service: ClassVar[str] = "notifier"
    model_config = SettingsConfigDict(env_prefix="TANDEM_NOTIFIER_", extra="ignore")

    #: Receivers on this host's loopback (127.0.0.0/8, ::1) may be subscribed, over plain
    #: ``http://`` too; ``tandem dev`` sets it, production leaves it off.
    allow_loopback: bool = False
    #: Private, link-local, shared and other non-public addresses may be subscribed.
    allow_private: bool = False
    #: ``http://`` URLs to any allowed address (without it: ``https://``, or loopback).
    allow_http: bool = False

    #: One attempt's bound: connecting, sending and reading the answer.
    attempt_timeout_s: float = Field(default=10.0, gt=0, le=120)
    #: The first retry's delay; each later one doubles it (with jitter) up to the cap.
    retry_base_s: float = Field(default=5.0, gt=0)
    retry_max_interval_s: float = Field(default=3600.0, gt=0)
    #: How long one event is retried before its delivery is given up (``failed``).
    retry_window_s: float = Field(default=24 * 3600.0, gt=0)
    #: A subscription whose every attempt failed this long is disabled (with an event).
    disable_after_s: float = Field(default=5 * 24 * 3600.0, gt=0)
    #: How often an idle courier looks for due deliveries (it is also woken by new ones).
    poll_interval_s: float = Field(default=1.0, gt=0)
    #: How long a process holds a subscription's lane (one sender per subscription across
    #: replicas) before another may take it; renewed while it works.
    lane_lease_s: float = Field(default=30.0, gt=0)
    #: Where a message's link points: ``{service}`` is the Tandem service owning the resource
    #: and ``{port}`` its default port, ``{plural}`` its collection (``incidents``), ``{id}``
    #: the resource's id. Production sets its public address here.
    link_template: str = "http://127.0.0.1:{port}/api/v1/{plural}/{id}"


#: The running service's settings, as a route dependency.
Settings = Annotated[NotifierSettings, Depends(service_settings)]
