"""Decisions over HTTP: ask for the next best offer, report responses, manage the catalogue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Path, Query, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from relata import heap
from relata.api.deps import ReadSession, WriteSession, get_settings, principal_of
from relata.auth import audit, gate
from relata.config import Settings
from relata.db import Database
from relata.decisions import offers, reports, service
from relata.decisions.engine import Engine, engine_for
from relata.decisions.schemas import (
    DecisionRead,
    OfferPerformance,
    OfferRead,
    OfferUpdate,
    OfferWrite,
    PolicyRead,
    PolicyUpdate,
    PolicyWrite,
    ResponseIn,
    ResponseItem,
    ResponsesIn,
    ResponsesRead,
    VersionRead,
)
from relata.decisions.service import DecisionRequest
from relata.writer import Writer

JSON = "application/json"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Each server process folds responses into the shared model in the background.

    A server loads the snapshot before its first request, not during it, and then settles
    its heap (heap.py), as it does again after each full reload."""
    db = app.state.db
    engine = engine_for(db, app.state.settings)
    server = app.state.server
    if server:
        await run_in_threadpool(engine.preload, db)
        # The background thread's full reloads are what settle the heap from then on.
        heap.serve(periodic=app.state.settings.decision_sync_seconds > 0)
    engine.start(db, settle_heap=server)
    yield
    engine.stop()


router = APIRouter(tags=["decisions"], lifespan=lifespan)
Key = Path(min_length=1, max_length=100)


def _engine(request: Request) -> Engine:
    return engine_for(request.app.state.db, get_settings(request))


def _who(request: Request) -> str | None:
    principal = principal_of(request)
    return principal.name if principal is not None else None


@router.post("/v1/decisions", response_model=DecisionRead, response_model_exclude_none=True)
async def decide(body: DecisionRequest, request: Request) -> Response:
    """The next best offers for a customer (or anonymous visitor) on a channel, now.

    `explain=true` adds every offer considered, the rule or policy that excluded it, and
    the parts of each score. The answer comes once the decision is logged.
    """
    # The hot path: no thread held while the group-commit writer logs the decision, and
    # the answer serialised once (a returned model is validated against response_model
    # again).
    engine = _engine(request)
    db = request.app.state.db
    writer = engine.writer(db)
    args = (db, engine, get_settings(request), body, writer)
    if body.anonymous_id is None:
        # On the event loop: for a known customer this is CPU work and one or two indexed
        # reads, cheaper than the hop to a pool thread and back (and the GIL serialises
        # it either way). A new visitor's profile is created through the writer: a thread.
        decided = _make(*args)
    else:
        decided = await run_in_threadpool(_make, *args)
    log = decided.log
    if log is not None:
        # The request's audit row goes into the decision's transaction: one commit for both.
        entry = gate.pending_audit(request, 200)

        def job(session: Session) -> None:
            log(session)
            if entry is not None:
                audit.record(session, entry)

        await writer.submit_async(job)
        gate.audited(request)
    return Response(decided.read.model_dump_json(exclude_none=True), media_type=JSON)


def _make(
    db: Database, engine: Engine, settings: Settings, body: DecisionRequest, writer: Writer
) -> service.Decided:
    with db.session(write=False) as session:
        return service.make(session, engine, settings, body, writer=writer)


@router.get("/v1/decisions/{decision_id}")
def get_decision(
    session: ReadSession, decision_id: str = Path(min_length=1, max_length=64)
) -> dict[str, object]:
    """A logged decision with the responses to it."""
    return reports.decision(session, decision_id)


@router.post("/v1/decisions/{decision_id}/responses", response_model=ResponsesRead, status_code=201)
async def respond(
    body: ResponseIn,
    request: Request,
    decision_id: str = Path(min_length=1, max_length=64),
) -> ResponsesRead:
    """What the customer did with an offer of the decision: impression, click, accept,
    reject or convert. A response repeated is stored once."""
    item = ResponseItem(decision_id=decision_id, **body.model_dump())
    return await _record(request, [item])


@router.post("/v1/decision-responses", response_model=ResponsesRead, status_code=201)
async def respond_many(body: ResponsesIn, request: Request) -> ResponsesRead:
    """Up to 5,000 responses to any decisions at once (integrations, bulk feedback)."""
    return await _record(request, body.responses)


async def _record(request: Request, items: list[ResponseItem]) -> ResponsesRead:
    """Through the group-commit writer, like the decisions they answer."""
    settings = get_settings(request)
    writer = _engine(request).writer(request.app.state.db)
    return await writer.submit_async(
        lambda session: service.record_responses(session, settings, items)
    )


@router.get("/v1/decision-performance", response_model=list[OfferPerformance])
def performance(
    session: ReadSession, days: int = Query(30, ge=1, le=3650)
) -> list[OfferPerformance]:
    """Impressions, accept rate and uplift over the random control group, per offer."""
    return reports.performance(session, days)


# --- the catalogue ---------------------------------------------------------------------------


@router.get("/v1/offers", response_model=list[OfferRead])
def list_offers(session: ReadSession, archived: bool = False) -> list[OfferRead]:
    return [OfferRead.model_validate(o) for o in offers.list_offers(session, archived)]


@router.post("/v1/offers", response_model=OfferRead, status_code=201)
def create_offer(body: OfferWrite, session: WriteSession, request: Request) -> OfferRead:
    """A new offer or activity; it takes effect in every process within a second or two."""
    offer = offers.create_offer(session, body, get_settings(request), _who(request))
    return OfferRead.model_validate(offer)


@router.get("/v1/offers/{key}", response_model=OfferRead)
def get_offer(session: ReadSession, key: str = Key) -> OfferRead:
    return OfferRead.model_validate(offers.get_offer(session, key))


@router.patch("/v1/offers/{key}", response_model=OfferRead)
def update_offer(
    body: OfferUpdate, session: WriteSession, request: Request, key: str = Key
) -> OfferRead:
    offer = offers.update_offer(session, key, body, get_settings(request), _who(request))
    return OfferRead.model_validate(offer)


@router.delete("/v1/offers/{key}", response_model=OfferRead)
def archive_offer(session: WriteSession, request: Request, key: str = Key) -> OfferRead:
    """Archived, not deleted: logged decisions keep pointing at it."""
    offer = offers.archive_offer(session, key, get_settings(request), _who(request))
    return OfferRead.model_validate(offer)


@router.get("/v1/offers/{key}/versions", response_model=list[VersionRead])
def offer_versions(session: ReadSession, key: str = Key) -> list[VersionRead]:
    return [VersionRead.model_validate(v) for v in offers.offer_versions(session, key)]


@router.get("/v1/contact-policies", response_model=list[PolicyRead])
def list_policies(session: ReadSession) -> list[PolicyRead]:
    return [PolicyRead.model_validate(p) for p in offers.list_policies(session)]


@router.post("/v1/contact-policies", response_model=PolicyRead, status_code=201)
def create_policy(body: PolicyWrite, session: WriteSession, request: Request) -> PolicyRead:
    policy = offers.create_policy(session, body, get_settings(request), _who(request))
    return PolicyRead.model_validate(policy)


@router.patch("/v1/contact-policies/{name}", response_model=PolicyRead)
def update_policy(
    body: PolicyUpdate, session: WriteSession, request: Request, name: str = Key
) -> PolicyRead:
    policy = offers.update_policy(session, name, body, get_settings(request), _who(request))
    return PolicyRead.model_validate(policy)
