"""Deciding: the decision, its log and its event; responses are in responses.py.

Services take a session and flush; the caller owns the transaction. What a decision or
response changes in this process's engine (a cached customer's impressions, the caps)
is applied when the transaction commits, never for a transaction that rolled back.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from relata import point_reads
from relata.config import Settings
from relata.db import defer_insert, on_commit, utcnow
from relata.decisions import permission, responses, timeline
from relata.decisions.decide import Outcome, Request
from relata.decisions.engine import Engine
from relata.decisions.features import ResponseRow
from relata.decisions.models import Decision, new_decision_id
from relata.decisions.responses import (  # the domain's public service, in one place
    RESPONSE_EVENTS,
    DecisionNotFound,
    ResponseError,
    parse_id,
    record_responses,
    responses_from_events,
)
from relata.decisions.schemas import ConsideredOffer, DecisionRead, DecisionRequest, OfferChoice
from relata.identity import service as identity
from relata.profiles.models import Customer
from relata.writer import Writer

__all__ = [
    "RESPONSE_EVENTS",
    "CustomerNotFound",
    "DecisionNotFound",
    "ResponseError",
    "decide",
    "parse_id",
    "record_responses",
    "responses_from_events",
]

DECISION_EVENT = "Decision Made"


class CustomerNotFound(LookupError):
    pass


# --- deciding ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decided:
    """A decision made and not yet logged: ``log`` writes it (None when not recorded)."""

    read: DecisionRead
    log: Callable[[Session], None] | None


def decide(
    session: Session,
    engine: Engine,
    settings: Settings,
    request: DecisionRequest,
    now: datetime | None = None,
    record: bool = True,
    writer: Writer | None = None,
) -> DecisionRead:
    """Decide, log the decision (and its impressions) and put it on the timeline.

    The log goes into ``session``, or with a ``writer`` into the writer's next group
    commit, waited for: then ``session`` only reads. ``record=False`` (the web simulator,
    ``relata decide --dry-run``) only answers: nothing is written, shown or counted; the
    decision id is empty.
    """
    decided = make(session, engine, settings, request, now, record, writer)
    if decided.log is not None:
        if writer is None:
            decided.log(session)
        else:
            writer.run(decided.log)
    return decided.read


def make(
    session: Session,
    engine: Engine,
    settings: Settings,
    request: DecisionRequest,
    now: datetime | None = None,
    record: bool = True,
    writer: Writer | None = None,
) -> Decided:
    """The reads and the decision; the caller runs ``log`` (the API: awaiting the writer
    without holding a thread). With a ``writer``, the session's transaction is over when
    this returns, so its connection is back in the pool while the log is committed."""
    now = now or utcnow()
    permission.requirement(settings, request.channel)
    mark = engine.changes_mark()
    customer_id = _customer(session, engine, request, record, writer)
    snap = engine.snapshot(session)
    state = engine.customer(session, customer_id, now, mark)
    if state is None and request.anonymous_id is None:
        # Forgotten between the look at the cache and now (a merge or erasure announced
        # meanwhile): the status says where the customer went.
        mark = engine.changes_mark()
        customer_id = _customer(session, None, request, record, writer)
        state = engine.customer(session, customer_id, now, mark)
    if state is None:
        raise CustomerNotFound(f"customer {customer_id} cannot be decided for (erased?)")
    block = permission.check(session, customer_id, request.channel, request.context, settings)
    ask = Request(
        request.channel,
        request.placement,
        request.context,
        request.limit,
        request.max_per_category,
        request.explain,
    )
    outcome = engine.decide(snap, state, ask, now, block)
    if writer is not None:
        session.rollback()
    if not record:
        return Decided(_read(None, customer_id, request, outcome, now), None)
    decision_id = new_decision_id()
    shown = request.impressions
    if shown is None:
        shown = settings.decision_auto_impressions
    version = snap.catalogue.version

    def log(into: Session) -> None:
        rows = _log(into, decision_id, customer_id, request, outcome, version, now, shown)

        def applied() -> None:
            engine.remember(customer_id, rows)
            if shown:
                engine.count(outcome, request.channel)

        on_commit(into, applied)

    return Decided(_read(decision_id, customer_id, request, outcome, now), log)


def _customer(
    session: Session,
    engine: Engine | None,
    request: DecisionRequest,
    create: bool,
    writer: Writer | None,
) -> int:
    """The active customer asked about; a new anonymous visitor gets a profile (if ``create``).

    One primary-key read of two columns in the common case (an active customer), none for
    a cached one while this process hears of every merge and erasure (customer_changes.py).
    """
    aid = request.anonymous_id
    if aid is not None:
        owners = identity.owners_of(session, [("anonymous_id", aid)]).get(("anonymous_id", aid))
        if owners:
            return identity.resolve_id(session, min(owners))
        if not create:
            raise CustomerNotFound(f"no visitor with anonymous id {aid[:64]!r}")
        if writer is not None:
            created = writer.run(lambda s: identity.anonymous_profiles(s, [aid])[aid])
            # A new read transaction sees the profile just committed (SQLite reads from the
            # snapshot its transaction began with).
            session.rollback()
            return created
        return identity.anonymous_profiles(session, [aid])[aid]
    cid = request.customer_id
    assert cid is not None
    if engine is not None and engine.knows_current(cid):
        return cid
    # A point read straight through the driver: a Session's checkout, BEGIN and ROLLBACK
    # cost more than this primary-key read (point_reads.py). The session stays unused
    # (and unconnected) unless the customer is not cached.
    reads = point_reads.of(session.get_bind().engine)
    row = reads.first(_STATUS, {"id": cid})
    if row is not None and row[1] is not None:
        cid = identity.resolve_id(session, cid)
        row = reads.first(_STATUS, {"id": cid})
    if row is None:
        raise CustomerNotFound(f"no customer with id {request.customer_id}")
    if row[0] != "active":
        raise CustomerNotFound(f"customer {request.customer_id} is {row[0]}")
    return cid


_C = Customer.__table__
_STATUS = select(_C.c.status, _C.c.merged_into_id).where(_C.c.id == bindparam("id"))


def _log(
    session: Session,
    decision_id: uuid.UUID,
    customer_id: int,
    request: DecisionRequest,
    outcome: Outcome,
    catalogue_version: int,
    now: datetime,
    shown: bool,
) -> list[ResponseRow]:
    offers = [
        {
            "offer_id": c.offer.id,
            "key": c.offer.key,
            "version": c.offer.version,
            "category": c.offer.category,
            "cost": c.offer.cost,
            "nothing": c.offer.is_nothing,
            "rank": c.rank,
            "priority": c.priority,
            "propensity": c.propensity,
            "sampled": c.sampled,
            "parts": c.parts,
            "features": c.features,
            "reason": c.reason,
            "logging_propensity": c.logging_propensity,
            # Its impression (and show outcome) logged with the decision: a response to
            # it need not try to add the show again (responses._outcomes).
            "shown": shown and not c.offer.is_nothing,
        }
        for c in outcome.chosen
    ]
    defer_insert(
        session,
        Decision.__table__,
        list(DECISION_COLUMNS),
        [
            (
                decision_id,
                customer_id,
                customer_id,
                request.anonymous_id,
                request.channel,
                request.placement,
                request.context,
                outcome.control,
                offers,
                outcome.labels,
                len(outcome.considered) or outcome.eligible,
                outcome.excluded,
                outcome.blocked.detail[:200] if outcome.blocked else None,
                catalogue_version,
                now,
            )
        ],
    )
    properties = {
        "decision_id": str(decision_id),
        "channel": request.channel,
        "placement": request.placement,
        "offers": [c.offer.key for c in outcome.chosen],
        "control": outcome.control,
    }
    if outcome.blocked:
        properties["blocked"] = outcome.blocked.detail
    event = (customer_id, DECISION_EVENT, f"decision:{decision_id}", properties)
    timeline.add(session, [event], defer=True)
    shows = [o for o in offers if not o["nothing"]] if shown else []
    # A new decision: its impressions and shows cannot exist yet, so no duplicate check.
    responses.impressions(session, decision_id, customer_id, request.channel, outcome, shows, now)
    return [
        ResponseRow(
            str(decision_id), o["offer_id"], o["category"], request.channel, "impression", now
        )
        for o in shows
    ]


DECISION_COLUMNS = (
    "id",
    "customer_id",
    "origin_customer_id",
    "anonymous_id",
    "channel",
    "placement",
    "context",
    "control",
    "offers",
    "labels",
    "considered",
    "excluded",
    "blocked",
    "catalogue_version",
    "created_at",
)


def _read(
    decision_id: uuid.UUID | None,
    customer_id: int,
    request: DecisionRequest,
    outcome: Outcome,
    now: datetime,
) -> DecisionRead:
    explain = request.explain
    return DecisionRead(
        decision_id=str(decision_id) if decision_id else "",
        customer_id=customer_id,
        channel=request.channel,
        placement=request.placement,
        control=outcome.control,
        offers=[
            OfferChoice(
                offer_id=c.offer.id,
                key=c.offer.key,
                name=c.offer.name,
                kind=c.offer.kind,
                category=c.offer.category,
                template=c.offer.template,
                rank=c.rank,
                score=round(c.priority, 6),
                propensity=round(c.propensity, 6),
                reason=c.reason,
                parts=c.parts if explain else None,
            )
            for c in outcome.chosen
        ],
        blocked=outcome.blocked.detail if outcome.blocked else None,
        eligible=outcome.eligible,
        excluded=outcome.excluded,
        learning_cells=outcome.labels[1:] if explain else None,
        considered=[
            ConsideredOffer(
                offer_id=c.offer.id,
                key=c.offer.key,
                status=c.status,
                code=c.code,
                detail=c.detail,
                propensity=None if c.propensity is None else round(c.propensity, 6),
                score=None if c.priority is None else round(c.priority, 6),
                parts=c.parts,
            )
            for c in outcome.considered
        ]
        if explain
        else None,
        created_at=now,
    )
