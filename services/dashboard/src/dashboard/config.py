"""Settings of the dashboard (``TANDEM_DASHBOARD_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from tandem.dora import BucketTable

#: Default SLA targets in minutes per priority: (to acknowledged, to resolved); None = no target.
DEFAULT_SLA_MINUTES: dict[int, tuple[int | None, int | None]] = {
    1: (15, 4 * 60),
    2: (30, 8 * 60),
    3: (4 * 60, 3 * 24 * 60),
    4: (24 * 60, 5 * 24 * 60),
    5: (None, None),
}


class DashboardSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TANDEM_DASHBOARD_", extra="ignore")

    #: Recent events kept for SSE resumption (Last-Event-ID) and replay.
    ring_size: int = Field(default=2000, ge=10)
    #: Events queued per SSE client before a slow client is dropped (it resumes by Last-Event-ID).
    client_queue_size: int = Field(default=500, ge=1)
    #: Seconds between keep-alive comments on an idle stream.
    keepalive_s: float = Field(default=15.0, gt=0)
    #: Events shown in the board's live feed.
    feed_size: int = Field(default=60, ge=1)
    #: Deployments shown as recent.
    recent_deployments: int = Field(default=15, ge=1)
    #: Weeks of DORA trend; the current metrics cover the last ``dora_window_days``.
    trend_weeks: int = Field(default=8, ge=2, le=52)
    dora_window_days: int = Field(default=28, ge=1)
    #: Environment the DORA panel reports on.
    dora_environment: str = "production"
    #: The DORA buckets; keep them equal to ``TANDEM_DEPLOYMENTS_DORA_BUCKETS`` (the same JSON).
    dora_buckets: BucketTable = Field(default_factory=BucketTable)
    #: The value stream's default window, and the longest one the board keeps history for.
    value_stream_window: str = "30d"
    value_stream_max_days: int = Field(default=90, ge=1, le=3660)
    sla_minutes: dict[int, tuple[int | None, int | None]] = Field(
        default_factory=lambda: dict(DEFAULT_SLA_MINUTES))
    #: The identity provider people sign in to the board with (one of
    #: ``TANDEM_AUTH_OIDC_ISSUERS``); unset, the board is opened with ``?access_token=``.
    login_issuer: str | None = None
    #: The board's client id at that provider (a public client: PKCE, no secret).
    login_client_id: str = "tandem-board"
    login_scope: str = "openid profile"
    #: The board's address as browsers reach it (for the redirect URI); unset, the request's.
    public_url: str | None = None
