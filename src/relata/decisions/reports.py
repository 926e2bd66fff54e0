"""Reading the decision log: one decision, a customer's decisions, offer performance."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relata.db import utcnow
from relata.decisions.intervals import difference, wilson
from relata.decisions.models import Decision, DecisionResponse, DecisionUsage, Offer
from relata.decisions.schemas import Interval, OfferPerformance
from relata.decisions.service import DecisionNotFound, parse_id
from relata.segments.rules.timing import BERLIN


def decision(session: Session, decision_id: str) -> dict[str, Any]:
    found_id = parse_id(decision_id)
    row = session.get(Decision, found_id) if found_id is not None else None
    if row is None:
        raise DecisionNotFound(f"no decision {decision_id[:64]!r}")
    responses = session.execute(
        select(
            DecisionResponse.offer_id,
            DecisionResponse.kind,
            DecisionResponse.via,
            DecisionResponse.occurred_at,
        )
        .where(DecisionResponse.decision_id == row.id)
        .order_by(DecisionResponse.occurred_at, DecisionResponse.id)
    )
    return {
        "decision_id": str(row.id),
        "customer_id": row.customer_id,
        "channel": row.channel,
        "placement": row.placement,
        "context": row.context,
        "control": row.control,
        "offers": row.offers,
        "learning_cells": row.labels[1:],
        "eligible": row.considered,
        "excluded": row.excluded,
        "blocked": row.blocked,
        "catalogue_version": row.catalogue_version,
        "created_at": row.created_at,
        "responses": [
            {"offer_id": o, "type": k, "via": via, "occurred_at": at} for o, k, via, at in responses
        ],
    }


def decisions_of(session: Session, customer_id: int, limit: int = 10) -> list[dict[str, Any]]:
    """The customer's latest decisions with what they did with each offer (360° view)."""
    rows = session.execute(
        select(
            Decision.id,
            Decision.created_at,
            Decision.channel,
            Decision.placement,
            Decision.control,
            Decision.offers,
            Decision.blocked,
        )
        .where(Decision.customer_id == customer_id)
        .order_by(Decision.created_at.desc())
        .limit(limit)
    ).all()
    if not rows:
        return []
    answers: dict[tuple[Any, int], list[str]] = defaultdict(list)
    found = session.execute(
        select(DecisionResponse.decision_id, DecisionResponse.offer_id, DecisionResponse.kind)
        .where(DecisionResponse.decision_id.in_([r[0] for r in rows]))
        .order_by(DecisionResponse.id)
    )
    for d, o, kind in found:
        answers[(d, o)].append(kind)
    return [
        {
            "decision_id": str(d),
            "created_at": at,
            "channel": channel,
            "placement": placement,
            "control": control,
            "blocked": blocked,
            "offers": [
                {
                    "key": o["key"],
                    "rank": o["rank"],
                    "reason": o["reason"],
                    "responses": answers.get((d, o["offer_id"]), []),
                }
                for o in offers
            ],
        }
        for d, at, channel, placement, control, offers, blocked in rows
    ]


def performance(session: Session, days: int) -> list[OfferPerformance]:
    """Per offer over the last ``days``: shows and wins, treatment against control."""
    since = (utcnow() - timedelta(days=days)).astimezone(BERLIN).date()
    u = DecisionUsage
    rows = session.execute(
        select(u.scope, u.control, func.sum(u.shows), func.sum(u.wins))
        .where(u.scope.like("offer:%"), u.day >= since)
        .group_by(u.scope, u.control)
    )
    counts: dict[int, dict[bool, tuple[int, int]]] = defaultdict(dict)
    for scope, control, shows, wins in rows:
        counts[int(scope.split(":", 1)[1])][bool(control)] = (int(shows or 0), int(wins or 0))
    found = []
    for offer in session.scalars(select(Offer).order_by(Offer.key)):
        treated = counts.get(offer.id, {}).get(False, (0, 0))
        control = counts.get(offer.id, {}).get(True, (0, 0))
        found.append(
            OfferPerformance(
                offer_id=offer.id,
                key=offer.key,
                name=offer.name,
                impressions=treated[0],
                accepts=treated[1],
                accept_rate=_interval(wilson(treated[1], treated[0])),
                control_impressions=control[0],
                control_accepts=control[1],
                control_rate=_interval(wilson(control[1], control[0])),
                uplift=_interval(difference(treated[1], treated[0], control[1], control[0])),
            )
        )
    return found


def _interval(found: tuple[float, float, float] | None) -> Interval:
    if found is None:
        return Interval(estimate=None, low=None, high=None)
    estimate, low, high = found
    return Interval(estimate=round(estimate, 6), low=round(low, 6), high=round(high, 6))
