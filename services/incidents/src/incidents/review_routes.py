"""The post-incident reviews' HTTP API: read, export, contributing factors, action items,
moves, and the metrics (reviews completed on time, action items open by team, time from review
to fix)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy import func, select

from incidents import reviews as pir
from incidents.models import Review, ReviewAction
from incidents.review_export import as_markdown
from incidents.reviews import reviews
from incidents.rules.stats import summarize
from incidents.schemas import (
    ActionCreate,
    ActionPublic,
    ActionTransition,
    FactorCreate,
    ReviewMetrics,
    ReviewPublic,
    ReviewsPage,
    ReviewTransition,
)
from tandem.app import Session
from tandem.auth import Reader, Worker
from tandem.db import utcnow
from tandem.errors import NotFound
from tandem.http import Idempotency, JSONBody, check_if_match, resource_response
from tandem.inputs import Moment
from tandem.pagination import Cursor, Limit, page
from tandem.vocabulary import NAME_PATTERN

review_router = APIRouter(prefix="/api/v1/reviews", tags=["reviews"])
review_metrics_router = APIRouter(prefix="/api/v1/review-metrics", tags=["metrics"])

Team = Annotated[str | None, Query(max_length=100, pattern=NAME_PATTERN,
                                   description="Reviews this team owns or takes part in.",
                                   examples=["payments"])]
#: The ``{ref}`` of a review's path, and the ``{action_ref}`` of one of its action items.
ReviewRef = Annotated[str, Path(
    description="The review's id or number (PIR0000001), or its incident's number "
                "(INC0000042).", examples=["PIR0000001"])]
ActionRef = Annotated[str, Path(
    description="The action item's number (PIR0000001-2) or its position in the review (2).",
    examples=["PIR0000001-2"])]


async def review_named(session: Session, ref: str, *, for_update: bool = False) -> Review:
    """A review by its id or number, or by its incident's number (``INC0000001``)."""
    if ref.upper().startswith("INC") and len(ref) <= 16:
        found = (await session.scalars(select(Review).where(
            Review.incident_number == ref.upper()))).first()
        if found is None:
            raise NotFound("review of incident", ref)
        return (await reviews.get(session, found.id, for_update=True) if for_update
                else found)
    return await reviews.get(session, ref, for_update=for_update)


@review_router.get("", response_model=ReviewsPage)
async def list_reviews(
    session: Session, _: Reader,
    status: Annotated[str | None, Query(
        pattern="^(open|in_progress|completed)$", description="Only reviews in this state.",
        examples=["open"])] = None,
    service_name: Annotated[str | None, Query(
        alias="service", max_length=100, pattern=NAME_PATTERN,
        description="Only reviews of this service's incidents.", examples=["checkout"])] = None,
    team: Team = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> ReviewsPage:
    stmt = select(Review)
    if status:
        stmt = stmt.where(Review.status == status)
    if service_name:
        stmt = stmt.where(Review.service == service_name)
    if team:
        stmt = stmt.where((Review.owner_team == team) | (Review.participant_team == team))
    items, next_cursor = await page(session, stmt, Review, limit=limit, cursor=cursor)
    return ReviewsPage(items=[await reviews.snapshot(session, r) for r in items],
                       next_cursor=next_cursor)


@review_router.get("/{ref}", response_model=ReviewPublic)
async def get_review(ref: ReviewRef, session: Session, _: Reader) -> JSONBody:
    return resource_response(await reviews.snapshot(session, await review_named(session, ref)))


@review_router.get("/{ref}/export", response_class=Response,
                   responses={200: {"content": {"text/markdown": {}}}})
async def export_review(ref: ReviewRef, session: Session, _: Reader) -> Response:
    """The review as Markdown, to paste where the team keeps its learning."""
    review = await reviews.snapshot(session, await review_named(session, ref))
    return Response(as_markdown(review), media_type="text/markdown; charset=utf-8",
                    headers={"Content-Disposition":
                             f'inline; filename="{review.number}.md"'})


@review_router.post("/{ref}/factors", status_code=201, response_model=ReviewPublic)
async def add_factor(ref: ReviewRef, body: FactorCreate, session: Session, actor: Worker,
                     idem: Idempotency) -> JSONBody:
    if (replay := await idem.replay(session)) is not None:
        return replay
    review = await review_named(session, ref, for_update=True)
    snapshot = await pir.add_factor(session, review, body.text, actor=actor.sub)
    return await idem.respond(session, snapshot, location=f"/api/v1/reviews/{review.id}")


@review_router.post("/{ref}/actions", status_code=201, response_model=ActionPublic)
async def add_action(ref: ReviewRef, body: ActionCreate, session: Session, actor: Worker,
                     idem: Idempotency) -> JSONBody:
    if (replay := await idem.replay(session)) is not None:
        return replay
    review = await review_named(session, ref, for_update=True)
    action = await pir.add_action(session, review, body, actor=actor.sub)
    return await idem.respond(session, action,
                              location=f"/api/v1/reviews/{review.id}/actions/{action.number}")


@review_router.get("/{ref}/actions", response_model=list[ActionPublic])
async def list_actions(ref: ReviewRef, session: Session, _: Reader) -> list[ActionPublic]:
    return (await reviews.snapshot(session, await review_named(session, ref))).actions


@review_router.post("/{ref}/actions/{action_ref}/transitions", response_model=ActionPublic)
async def close_action(ref: ReviewRef, action_ref: ActionRef, body: ActionTransition,
                       session: Session, actor: Worker) -> ActionPublic:
    """Close an action item by hand (``{"to": "closed"}``)."""
    review = await review_named(session, ref, for_update=True)
    action = await pir.action_of(session, review, action_ref)
    if action.status == "closed":
        return pir.action_public(review, action)
    await pir.close_action(session, review, action, actor=actor.sub, now=utcnow())
    return pir.action_public(review, action)


@review_router.post("/{ref}/transitions", response_model=ReviewPublic)
async def move_review(ref: ReviewRef, body: ReviewTransition, request: Request, session: Session,
                      actor: Worker) -> JSONBody:
    review = await review_named(session, ref, for_update=True)
    check_if_match(request, review.version)
    return resource_response(await pir.move_review(session, review, body.to, body.reason,
                                                   actor=actor.sub))


@review_metrics_router.get("", response_model=ReviewMetrics)
async def review_metrics(session: Session, _: Reader, team: Team = None,
                         since: Annotated[Moment | None, Query(
                             description="Only reviews started at or after this time (RFC 3339 "
                                         "with its offset).",
                             examples=["2026-11-01T00:00:00Z"])] = None) -> ReviewMetrics:
    """Reviews completed on time (by their due date), open action items by team, and the
    time from a review's start to each action item its fix's deployment closed."""
    stmt = select(Review)
    if team:
        stmt = stmt.where((Review.owner_team == team) | (Review.participant_team == team))
    if since:
        stmt = stmt.where(Review.created_at >= since)  # type: ignore[operator]
    rows = list((await session.scalars(stmt)).all())
    completed = [r for r in rows if r.completed_at is not None]
    on_time = [r for r in completed if r.completed_at is not None and r.completed_at <= r.due_at]
    now = utcnow()
    ids = [r.id for r in rows]
    open_by_team: dict[str, int] = {}
    fixes: list[float] = []
    if ids:
        counted = await session.execute(
            select(ReviewAction.team, func.count()).where(
                ReviewAction.review_id.in_(ids), ReviewAction.status == "open")  # type: ignore[attr-defined]
            .group_by(ReviewAction.team))
        open_by_team = {str(t or "(no team)"): int(n) for t, n in counted.all()}
        started = {r.id: r.created_at for r in rows}
        closed = await session.execute(select(
            ReviewAction.review_id, ReviewAction.closed_at).where(
            ReviewAction.review_id.in_(ids),  # type: ignore[attr-defined]
            ReviewAction.closed_by_deployment_id.is_not(None)))  # type: ignore[union-attr]
        fixes = [(at - started[rid]).total_seconds() for rid, at in closed.all()
                 if at is not None]
    return ReviewMetrics(
        reviews=len(rows), completed=len(completed), completed_on_time=len(on_time),
        on_time_rate=round(len(on_time) / len(completed), 4) if completed else None,
        open_past_due=sum(1 for r in rows if r.completed_at is None and r.due_at <= now),
        open_actions_by_team=open_by_team, review_to_fix=summarize(fixes))
