"""Reading what the engine holds in memory: catalogue, counts, usage, model, one customer."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from relata import point_reads
from relata.config import Settings
from relata.decisions import eligibility, permission
from relata.decisions.bandit import CellStats
from relata.decisions.catalogue import Catalogue, OfferSpec, PolicySpec
from relata.decisions.features import CustomerState, ResponseRow, build
from relata.decisions.models import (
    ContactPolicy,
    DecisionModel,
    DecisionResponse,
    DecisionStat,
    DecisionState,
    DecisionUsage,
    Offer,
)
from relata.decisions.policies import Usage
from relata.segments.loader import Needs

STATE_ID = 1


Versions = tuple[int, int, int | None, float | None]


def versions(session: Session) -> Versions:
    """(catalogue, stats, model, decay landmark): one primary-key read, polled by every engine."""
    s = DecisionState
    row = session.execute(
        select(s.catalogue_version, s.stats_version, s.model_id, s.landmark).where(s.id == STATE_ID)
    ).first()
    return (0, 0, None, None) if row is None else (row[0], row[1], row[2], row[3])


def offer_spec(o: Offer) -> OfferSpec:
    return OfferSpec(
        id=o.id,
        key=o.key,
        name=o.name,
        kind=o.kind,
        value=o.value,
        channels=frozenset(o.channels),
        placements=frozenset(o.placements),
        category=o.category,
        product_id=o.product_id,
        weight=o.weight,
        cost=o.cost,
        budget=o.budget,
        cap_total=o.cap_total,
        cap_daily=o.cap_daily,
        starts_at=o.starts_at,
        ends_at=o.ends_at,
        rule=o.rule,
        max_impressions=o.max_impressions,
        impression_window_days=o.impression_window_days,
        reject_suppress_days=o.reject_suppress_days,
        suppress_held=o.suppress_held,
        held_days=o.held_days,
        template=o.template,
        status=o.status,
        version=o.version,
    )


def policy_spec(p: ContactPolicy) -> PolicySpec:
    return PolicySpec(
        id=p.id,
        name=p.name,
        kind=p.kind,
        channels=frozenset(p.channels),
        max_count=p.max_count,
        window_days=p.window_days,
        rule=p.rule,
        version=p.version,
    )


def catalogue(session: Session, version: int) -> Catalogue:
    """Every offer that is not archived, and the active policies."""
    offers = [
        offer_spec(o) for o in session.scalars(select(Offer).where(Offer.status != "archived"))
    ]
    policies = [
        policy_spec(p)
        for p in session.scalars(
            select(ContactPolicy).where(ContactPolicy.active).order_by(ContactPolicy.id)
        )
    ]
    return Catalogue.build(version, offers, policies)


def decay(at: float, now: float, half_life_days: float) -> float:
    """What a count of time ``at`` is worth at ``now`` (epoch seconds): 2^(-(now - at) / h).

    Also negative ages (``now`` before ``at``): forward decay weighs a late show up."""
    if half_life_days <= 0:
        return 1.0
    return 2.0 ** (-(now - at) / (half_life_days * 86400.0))


def stats(
    session: Session,
    cat: Catalogue,
    half_life_days: float,
    landmark: float | None,
    since_version: int = 0,
    previous: CellStats | None = None,
) -> CellStats:
    """Counts decayed to now (forward decay: one factor for all). With ``previous``, only the
    cells written since ``since_version`` are read again (copy on write: a decision in flight
    keeps its arrays)."""
    factor = decay(landmark, time.time(), half_life_days) if landmark is not None else 1.0
    stmt = select(DecisionStat.offer_id, DecisionStat.cell, DecisionStat.shows, DecisionStat.wins)
    if previous is not None:
        stmt = stmt.where(DecisionStat.version > since_version)
    rows = session.execute(stmt).all()
    result = CellStats(len(cat.offers), dict(previous.cells) if previous is not None else {})
    copied: set[int] = set()
    for offer_id, cell, shows, wins in rows:
        position = cat.index.get(offer_id)
        if position is None:
            continue
        if cell not in copied:
            old = result.cells.get(cell)
            fresh = (
                (old[0].copy(), old[1].copy()) if old else (np.zeros(result.n), np.zeros(result.n))
            )
            result.cells[cell] = fresh
            copied.add(cell)
        result.cells[cell][0][position] = shows * factor
        result.cells[cell][1][position] = wins * factor
    return result


def usage(session: Session, cat: Catalogue, today: date) -> Usage:
    """What the caps need: shows and spending of capped offers, contacts on capped channels.

    Only the scopes that have a cap are read, by primary key, so this stays cheap however
    long the usage table grows.
    """
    U = DecisionUsage
    capped = [o.id for o in cat.offers if o.cap_total is not None or o.budget is not None]
    total: dict[int, int] = {}
    spent: dict[int, float] = {}
    if capped:
        rows = session.execute(
            select(
                DecisionUsage.scope, func.sum(DecisionUsage.shows), func.sum(DecisionUsage.spent)
            )
            .where(DecisionUsage.scope.in_([f"offer:{i}" for i in capped]))
            .group_by(U.scope)
        )
        for scope, shows, money in rows:
            offer_id = int(scope.split(":", 1)[1])
            total[offer_id], spent[offer_id] = int(shows or 0), float(money or 0.0)
    scopes = [f"offer:{o.id}" for o in cat.offers if o.cap_daily is not None]
    volume = [p for p in cat.policies if p.kind == "volume"]
    if volume:
        scopes += [f"channel:{c}" for c in _channels(cat, volume)]
    today_offer: dict[int, int] = {}
    today_channel: dict[str, int] = {}
    if scopes:
        rows = session.execute(
            select(DecisionUsage.scope, func.sum(DecisionUsage.shows))
            .where(DecisionUsage.scope.in_(scopes), DecisionUsage.day == today)
            .group_by(DecisionUsage.scope)
        )
        for scope, shows in rows:
            kind, _, name = scope.partition(":")
            if kind == "offer":
                today_offer[int(name)] = int(shows or 0)
            else:
                today_channel[name] = int(shows or 0)
    return Usage(total, today_offer, spent, today_channel)


def _channels(cat: Catalogue, policies: list[PolicySpec]) -> set[str]:
    every = {c for o in cat.offers for c in o.channels}
    return {c for p in policies for c in (p.channels or every)}


def model(session: Session, model_id: int | None) -> DecisionModel | None:
    if model_id is None:
        return None
    return session.get(DecisionModel, model_id)


def customer(
    session: Session,
    customer_id: int,
    needs: Needs,
    categories: Mapping[int, str | None],
    now: datetime,
    horizon_days: int,
    settings: Settings,
) -> CustomerState | None:
    """The customer's profile and recent responses, or None if not an active customer.

    One statement (``eligibility.load_with``): the profile, the responses of the horizon
    and the consent ledger, which primes consent's cache for the permission check that
    follows. A cache miss is the common case at the moment of contact: most customers
    were not asked about in the last half minute.
    """
    bind = session.get_bind()
    dialect = bind.dialect
    since = {"responses_since": now - timedelta(days=horizon_days)}
    also = (_responses_json, permission.ledger_json)
    profiles = extra = None
    if not session.in_transaction():
        # Nothing of this session to see (a server's decision has not touched it): on the
        # thread's point-read connection, as a session's checkout, BEGIN and ROLLBACK were
        # a third of a cache miss's load. If that connection fails (a server restart),
        # once more through the session.
        reads = point_reads.of(bind.engine)
        try:
            profiles, extra = eligibility.load_with(
                session, [customer_id], needs, *also, params=since, dbapi=reads.connection()
            )
        except DBAPIError:
            reads.close()
    if profiles is None or extra is None:
        profiles, extra = eligibility.load_with(session, [customer_id], needs, *also, params=since)
    found = profiles.get(customer_id)
    if found is None:
        return None
    responses_raw, ledger = extra[customer_id]
    read = _READERS.get(dialect.name)
    if read is None:
        read = _READERS[dialect.name] = eligibility.row_converter(_RESPONSES, dialect)
    responses = [
        ResponseRow(str(d), offer_id, categories.get(offer_id), channel, kind, at)
        for d, offer_id, channel, kind, at in map(read, responses_raw)
    ]
    permission.prime(session, customer_id, ledger, dialect, settings)
    return build(found, responses, now)


_R = DecisionResponse.__table__
_RESPONSES = [_R.c[c] for c in ("decision_id", "offer_id", "channel", "kind", "occurred_at")]
_READERS: dict[str, Any] = {}


def _responses_json(dialect: str, customer_id: Any) -> Any:
    since = bindparam("responses_since", type_=_R.c.occurred_at.type)
    where = (_R.c.customer_id == customer_id, _R.c.occurred_at >= since)
    return eligibility.json_rows(dialect, _R, _RESPONSES, *where)
