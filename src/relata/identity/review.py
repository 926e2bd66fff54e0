"""The review queue: pairs of customers that may be one person, for a person to decide.

Accepting merges them through the merge log (so `relata unmerge` undoes it); rejecting
remembers the pair, and no later run, batch or real time, proposes or merges it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from relata.config import Settings
from relata.db import utcnow
from relata.identity import service as identity
from relata.identity.matching import store
from relata.identity.matching.models import MatchReview
from relata.profiles.models import Customer

STATUSES = ("open", "accepted", "rejected", "stale")
CHUNK = 500


class ReviewError(ValueError):
    """A review decision that cannot be taken, with the reason."""


class ReviewNotFound(ReviewError):
    pass


@dataclass(frozen=True, slots=True)
class Proposal:
    a: int
    b: int
    weight: float
    probability: float
    explanation: dict[str, Any]


def propose(session: Session, proposals: Sequence[Proposal], model_version: int) -> int:
    """Queue pairs for review; a pair decided before is left as decided. Returns how many
    are open now that were not before."""
    by_pair: dict[tuple[int, int], Proposal] = {}
    for p in proposals:
        key = (min(p.a, p.b), max(p.a, p.b))
        if key[0] != key[1] and (key not in by_pair or by_pair[key].weight < p.weight):
            by_pair[key] = p
    existing = _existing(session, list(by_pair))
    added, now = 0, utcnow()
    for (a, b), p in by_pair.items():
        row = existing.get((a, b))
        if row is None:
            session.add(
                MatchReview(
                    customer_a_id=a,
                    customer_b_id=b,
                    match_weight=p.weight,
                    match_probability=p.probability,
                    model_version=model_version,
                    explanation=p.explanation,
                    status="open",
                    created_at=now,
                )
            )
            added += 1
        elif row.status in ("open", "stale"):
            added += row.status == "stale"
            row.status = "open"
            row.match_weight, row.match_probability = p.weight, p.probability
            row.model_version, row.explanation = model_version, p.explanation
    session.flush()
    return added


def _existing(session: Session, pairs: list[tuple[int, int]]) -> dict[tuple[int, int], MatchReview]:
    found: dict[tuple[int, int], MatchReview] = {}
    firsts = sorted({a for a, _ in pairs})
    wanted = set(pairs)
    for i in range(0, len(firsts), CHUNK):
        stmt = select(MatchReview).where(MatchReview.customer_a_id.in_(firsts[i : i + CHUNK]))
        for row in session.scalars(stmt):
            if (row.customer_a_id, row.customer_b_id) in wanted:
                found[(row.customer_a_id, row.customer_b_id)] = row
    return found


def mark_stale(session: Session) -> int:
    """Open pairs one of whose customers was merged away since: the run proposes anew."""
    merged = select(Customer.id).where(Customer.status != "active")
    result = session.execute(
        update(MatchReview)
        .where(
            MatchReview.status == "open",
            MatchReview.customer_a_id.in_(merged) | MatchReview.customer_b_id.in_(merged),
        )
        .values(status="stale", decided_at=utcnow())
    )
    return result.rowcount or 0


def list_reviews(
    session: Session, status: str = "open", limit: int = 50, after: int | None = None
) -> list[MatchReview]:
    if status not in STATUSES:
        raise ReviewError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    stmt = select(MatchReview).where(MatchReview.status == status)
    if after is not None:
        stmt = stmt.where(MatchReview.id > after)
    return list(session.scalars(stmt.order_by(MatchReview.id).limit(limit)))


def get(session: Session, review_id: int) -> MatchReview:
    review = session.get(MatchReview, review_id)
    if review is None:
        raise ReviewNotFound(f"no review with id {review_id}")
    return review


def _open(session: Session, review_id: int) -> MatchReview:
    review = get(session, review_id)
    if review.status != "open":
        raise ReviewError(f"review {review_id} is {review.status}, not open")
    return review


def accept(session: Session, review_id: int, settings: Settings) -> MatchReview:
    """Merge the two customers (the older survives); undone by unmerging the merge."""
    review = _open(session, review_id)
    a = identity.resolve_id(session, review.customer_a_id)
    b = identity.resolve_id(session, review.customer_b_id)
    if a != b:
        # Rejections are stored with the ids of their day: ask about everyone in both.
        members = identity.subtree(session, a) | identity.subtree(session, b)
        if (min(a, b), max(a, b)) in store.rejected_pairs(session, members):
            raise ReviewError(f"customers {a} and {b} were rejected as different people")
        reason = f"review {review.id}: accepted (weight {review.match_weight:.1f})"
        review.merge_id = identity.merge_customers(session, min(a, b), max(a, b), reason, settings)
    review.status, review.decided_at = "accepted", utcnow()
    session.flush()
    return review


def reject(session: Session, review_id: int) -> MatchReview:
    """Two different people: remembered, never proposed or merged again."""
    review = _open(session, review_id)
    a = identity.resolve_id(session, review.customer_a_id)
    b = identity.resolve_id(session, review.customer_b_id)
    if a == b:
        raise ReviewError(
            f"customers {review.customer_a_id} and {review.customer_b_id} were merged since; "
            "unmerge them first"
        )
    store.reject(session, review.customer_a_id, review.customer_b_id, f"review {review.id}")
    review.status, review.decided_at = "rejected", utcnow()
    session.flush()
    return review
