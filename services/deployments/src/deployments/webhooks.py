"""Deployments the tools already know, heard unchanged: GitHub's ``deployment`` and
``deployment_status`` webhooks (``POST /integrations/github``) and GitLab's deployment events
(``POST /integrations/gitlab``).

A sender's deployment becomes a Tandem deployment through the same write as
``POST /api/v1/deployments`` (its gate decided as for any deployment), and its statuses move it
through the same transitions, so S2, S5 and DORA follow as for a pipeline's. Each sender's
deployment id is the deployment's ``external_id`` and each delivery id is kept
(``integration_delivery``): a redelivered webhook changes nothing.

Authentication is the sender's own: GitHub's HMAC ``X-Hub-Signature-256`` and GitLab's secret
``X-Gitlab-Token``, both compared in constant time; a refusal says nothing of why.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from deployments.config import DeploymentsSettings, Settings
from deployments.deployment import deployments, public
from deployments.errors import UnknownEnvironment
from deployments.lifecycle import record_deployment, transition
from deployments.models import Deployment, DeploymentCreate, IntegrationDelivery
from deployments.projections import service_of_repository
from tandem.app import Session
from tandem.db import utcnow
from tandem.numbers import hold_numbers
from tandem.problems import Problem
from tandem.vocabulary import as_name, repository_name

router = APIRouter(prefix="/integrations", tags=["integrations"])

#: GitHub's deployment states -> Tandem's transitions (``inactive``: ignored).
GITHUB_STATES: dict[str, str | None] = {
    "queued": "in_progress", "pending": "in_progress", "in_progress": "in_progress",
    "success": "succeeded", "failure": "failed", "error": "failed", "inactive": None,
}
#: GitLab's deployment statuses -> Tandem's transitions.
GITLAB_STATUSES: dict[str, str] = {
    "running": "in_progress", "success": "succeeded", "failed": "failed",
    "canceled": "canceled",
}


# --- GitHub's payloads (the fields Tandem reads; the rest is ignored) ------------------------


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class GitHubUser(_Lenient):
    login: str


class GitHubRepository(_Lenient):
    name: str
    full_name: str


class GitHubDeployment(_Lenient):
    id: int
    sha: str
    ref: str | None = None
    environment: str
    description: str | None = None
    payload: Any = None
    created_at: AwareDatetime
    url: str | None = None


class GitHubDeploymentEvent(_Lenient):
    deployment: GitHubDeployment
    repository: GitHubRepository
    sender: GitHubUser | None = None


class GitHubStatus(_Lenient):
    id: int
    state: str
    description: str | None = None
    log_url: str | None = None
    target_url: str | None = None


class GitHubDeploymentStatusEvent(GitHubDeploymentEvent):
    deployment_status: GitHubStatus


# --- GitLab's payload -------------------------------------------------------------------------


class GitLabProject(_Lenient):
    id: int
    name: str
    web_url: str
    path_with_namespace: str | None = None


class GitLabUser(_Lenient):
    username: str


class GitLabDeploymentEvent(_Lenient):
    object_kind: str
    status: str
    deployment_id: int
    environment: str
    environment_tier: str | None = None
    project: GitLabProject
    short_sha: str
    commit_url: str
    commit_title: str | None = None
    deployable_url: str | None = None
    user: GitLabUser | None = None


# --- answers ----------------------------------------------------------------------------------


def _refused() -> Problem:
    """401, the same for a missing, malformed or wrong signature or token (no hint why)."""
    return Problem(401, "The delivery could not be authenticated.")


def _answer(status: int, outcome: str, **facts: Any) -> JSONResponse:
    return JSONResponse({"status": outcome, **facts}, status_code=status)


def _parse(body: bytes, model: type[BaseModel]) -> Any:
    """The payload as ``model``; 422 naming each missing or invalid field otherwise."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Problem(400, "The body is not JSON.") from None
    if not isinstance(raw, dict):
        raise Problem(422, "The body must be a JSON object.")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])}
                                      for e in exc.errors()]) from None


def github_signature_valid(secret: str, body: bytes, header: str | None) -> bool:
    """``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``, in constant time."""
    if not secret or not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.removeprefix("sha256=").encode())


def gitlab_token_valid(secret: str, header: str | None) -> bool:
    if not secret or header is None:
        return False
    return hmac.compare_digest(secret.encode(), header.encode())


# --- the shared steps -------------------------------------------------------------------------


async def first_delivery(session: AsyncSession, sender: str, delivery_id: str | None) -> bool:
    """Whether this delivery is new; it is kept in the caller's transaction (so a delivery
    whose effect failed is not kept, and its redelivery is applied)."""
    if not delivery_id:
        return True
    delivery_id = delivery_id[:255]
    if await session.get(IntegrationDelivery, (sender, delivery_id)) is not None:
        return False
    session.add(IntegrationDelivery(sender=sender, delivery_id=delivery_id,
                                    received_at=utcnow()))
    return True


def service_slug(name: str) -> str:
    """A repository's name as a Tandem service name (lower case, ``[a-z0-9._-]``)."""
    return as_name(name)[:100] or "unnamed"


async def deployment_of(session: AsyncSession, external_id: str) -> Deployment | None:
    """The deployment a sender's id names, read for update."""
    return (await session.scalars(deployments.locked(select(Deployment).where(
        Deployment.external_id == external_id)))).first()


async def deployment_once(session: AsyncSession, external_id: str) -> Deployment | None:
    """The deployment a sender's id names; when there is none yet, read again after taking the
    deployment number counter's lock, so of two deliveries racing to record one sender's
    deployment (GitHub sends ``deployment`` and its first status together) the second finds
    the first's instead of failing on the unique ``external_id``."""
    found = await deployment_of(session, external_id)
    if found is None:
        await hold_numbers(session, deployments.number_prefix)
        found = await deployment_of(session, external_id)
    return found


async def follow(session: AsyncSession, dep: Deployment, to: str, reason: str, *,
                 actor: str) -> bool:
    """Move ``dep`` to ``to`` as its sender reports it, through ``in_progress`` when it is
    still requested; a report that changes nothing (already there, a late ``in_progress``,
    a second outcome) is ignored. Returns whether it moved."""
    if dep.status == to or dep.status in ("succeeded", "failed", "rolled_back", "canceled"):
        return False
    if to == "in_progress" and dep.status != "requested":
        return False
    if to in ("succeeded", "failed") and dep.status == "requested":
        await transition(session, dep, "in_progress", reason, actor=actor)
    await transition(session, dep, to, reason, actor=actor)
    return True


def _environment(settings: DeploymentsSettings, *names: str | None) -> str:
    for name in names:
        if name and (mapped := settings.environment_of(name)) is not None:
            return mapped
    raise UnknownEnvironment(next((n for n in names if n), ""))


# --- GitHub -----------------------------------------------------------------------------------


def _github_commits(deployment: GitHubDeployment) -> list[dict[str, Any]]:
    """The deployment's sha (GitHub gives no time for it), and the commits its ``payload``
    carries (``{"commits": [{"sha"|"id", "committed_at"|"timestamp"}]}``), with their times."""
    commits: dict[str, str | None] = {deployment.sha: None}
    payload = deployment.payload
    if isinstance(payload, dict) and isinstance(payload.get("commits"), list):
        for c in payload["commits"][:1000]:
            if not isinstance(c, dict):
                continue
            sha = c.get("sha") or c.get("id")
            when = c.get("committed_at") or c.get("timestamp")
            if isinstance(sha, str) and sha:
                commits[sha] = _iso(when) or commits.get(sha)
    return [{"sha": sha, "committed_at": when} for sha, when in commits.items()]


def _iso(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC).isoformat() if moment.tzinfo else None


def _github_version(deployment: GitHubDeployment) -> str:
    payload = deployment.payload
    if isinstance(payload, dict) and isinstance(payload.get("version"), str | int):
        return str(payload["version"])[:100] or deployment.sha[:12]
    return deployment.sha[:12]


async def github_deployment(session: AsyncSession, settings: DeploymentsSettings,
                            event: GitHubDeploymentEvent, actor: str) -> Deployment:
    """The Tandem deployment of a GitHub deployment, recorded (gate decided) the first time
    GitHub names it, by its ``deployment`` or by a status of it."""
    d, repo = event.deployment, event.repository
    external_id = f"github:{repo.full_name.lower()}:{d.id}"
    found = await deployment_once(session, external_id)
    if found is not None:
        return found
    service = (await service_of_repository(session, f"github.com/{repo.full_name}")
               or service_slug(repo.name))
    body = DeploymentCreate.model_validate({
        "service": service, "environment": _environment(settings, d.environment),
        "version": _github_version(d), "ref": (d.ref or "")[:255] or None,
        "pipeline": {"id": f"github-deployment-{d.id}"},
    })
    await record_deployment(session, settings, body, actor=actor, external_id=external_id,
                            commits=_github_commits(d))
    created = await deployment_of(session, external_id)
    assert created is not None
    return created


@router.post("/github", summary="GitHub deployment and deployment_status webhooks",
             responses={401: {"description": "Bad or missing signature"}})
async def github_webhook(request: Request, session: Session, settings: Settings
                         ) -> JSONResponse:
    """Verified by ``X-Hub-Signature-256`` (``TANDEM_DEPLOYMENTS_GITHUB_SECRET``); ``ping``
    answers 200; other event types 202 (ignored)."""
    body = await request.body()
    if not github_signature_valid(settings.github_secret.get_secret_value(), body,
                                  request.headers.get("x-hub-signature-256")):
        raise _refused()
    kind = request.headers.get("x-github-event", "")
    if kind == "ping":
        return _answer(200, "pong")
    if kind not in ("deployment", "deployment_status"):
        return _answer(202, "ignored", event=kind[:100])
    model = GitHubDeploymentEvent if kind == "deployment" else GitHubDeploymentStatusEvent
    event = _parse(body, model)
    if not await first_delivery(session, "github", request.headers.get("x-github-delivery")):
        return _answer(200, "duplicate")
    actor = f"github:{event.sender.login if event.sender else event.repository.full_name}"
    dep = await github_deployment(session, settings, event, actor[:255])
    moved = False
    if isinstance(event, GitHubDeploymentStatusEvent):
        status = event.deployment_status
        to = GITHUB_STATES.get(status.state)
        if to is not None:
            reason = (status.description or f"GitHub deployment status {status.state}")[:1000]
            moved = await follow(session, dep, to, reason, actor=actor[:255])
    return _answer(200, "moved" if moved else "recorded",
                   deployment=public(dep).model_dump(mode="json"))


# --- GitLab -----------------------------------------------------------------------------------


def _gitlab_sha(event: GitLabDeploymentEvent) -> str:
    tail = event.commit_url.rstrip("/").rsplit("/", 1)[-1]
    return tail if re.fullmatch(r"[0-9a-f]{7,64}", tail) else event.short_sha


@router.post("/gitlab", summary="GitLab deployment events",
             responses={401: {"description": "Bad or missing token"}})
async def gitlab_webhook(request: Request, session: Session, settings: Settings
                         ) -> JSONResponse:
    """Verified by ``X-Gitlab-Token`` (``TANDEM_DEPLOYMENTS_GITLAB_TOKEN``); events other
    than ``object_kind: deployment`` answer 202 (ignored)."""
    if not gitlab_token_valid(settings.gitlab_token.get_secret_value(),
                              request.headers.get("x-gitlab-token")):
        raise _refused()
    body = await request.body()
    try:
        kind = orjson.loads(body).get("object_kind")
    except (orjson.JSONDecodeError, AttributeError):
        raise Problem(400, "The body is not a JSON object.") from None
    if kind != "deployment":
        return _answer(202, "ignored", event=str(kind)[:100])
    event: GitLabDeploymentEvent = _parse(body, GitLabDeploymentEvent)
    to = GITLAB_STATUSES.get(event.status)
    if to is None:
        return _answer(202, "ignored", status=event.status[:100])
    delivery = (request.headers.get("x-gitlab-event-uuid")
                or request.headers.get("idempotency-key"))
    if not await first_delivery(session, "gitlab", delivery):
        return _answer(200, "duplicate")
    actor = f"gitlab:{event.user.username if event.user else event.project.path_with_namespace}"
    actor = actor[:255]
    external_id = f"gitlab:{event.project.id}:{event.deployment_id}"
    dep = await deployment_once(session, external_id)
    if dep is None:
        service = (await service_of_repository(session, repository_name(event.project.web_url))
                   or service_slug(event.project.name))
        sha = _gitlab_sha(event)
        body_ = DeploymentCreate.model_validate({
            "service": service,
            "environment": _environment(settings, event.environment_tier, event.environment),
            "version": event.short_sha[:100],
            "pipeline": {"id": f"gitlab-deployment-{event.deployment_id}",
                         **({"run_url": event.deployable_url}
                            if (event.deployable_url or "").startswith("http") else {})},
        })
        await record_deployment(session, settings, body_, actor=actor, external_id=external_id,
                                commits=[{"sha": sha, "committed_at": None}])
        dep = await deployment_of(session, external_id)
        assert dep is not None
    moved = await follow(session, dep, to, f"GitLab deployment {event.status}", actor=actor)
    return _answer(200, "moved" if moved else "recorded",
                   deployment=public(dep).model_dump(mode="json"))
