"""Offers and contact policies (versioned), the decision log, responses, and the learning state.

The decision log is append-only: ``decisions``, ``decision_responses`` and
``decision_outcomes`` only ever get new rows (outcomes also get ``folded`` set once).
Decision ids are UUIDv7, time-ordered, so the log is ready to be partitioned by time.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from relata.db import Base, BigId, JSONType, UTCDateTime, utcnow


def new_decision_id() -> uuid.UUID:
    """A UUIDv7 (RFC 9562): milliseconds since 1970, then 74 random bits."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & (2**48 - 1)) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64
    value |= 0b10 << 62 | rand & (2**62 - 1)
    return uuid.UUID(int=value)


class Offer(Base):
    """A product offer, content, banner or coupon, or an activity (a call, a survey, nothing)."""

    __tablename__ = "offers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # see catalogue.KINDS
    status: Mapped[str] = mapped_column(String(16), default="active")  # active|paused|archived
    category: Mapped[str | None] = mapped_column(String(200))
    product_id: Mapped[str | None] = mapped_column(String(128))
    channels: Mapped[list[str]] = mapped_column(JSONType, default=list)
    placements: Mapped[list[str]] = mapped_column(JSONType, default=list)  # empty: any
    value: Mapped[float] = mapped_column(Float)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)  # spent per acceptance
    budget: Mapped[float | None] = mapped_column(Float)
    cap_total: Mapped[int | None] = mapped_column(Integer)
    cap_daily: Mapped[int | None] = mapped_column(Integer)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rule: Mapped[str | None] = mapped_column(Text)  # eligibility, in the rule language
    max_impressions: Mapped[int | None] = mapped_column(Integer)
    impression_window_days: Mapped[int] = mapped_column(Integer, default=30)
    reject_suppress_days: Mapped[int | None] = mapped_column(Integer)
    suppress_held: Mapped[str] = mapped_column(String(16), default="product")
    held_days: Mapped[int] = mapped_column(Integer, default=90)
    template: Mapped[str | None] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ContactPolicy(Base):
    """A channel frequency cap, a rule-based suppression or a global daily volume cap."""

    __tablename__ = "contact_policies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # frequency | suppress | volume
    channels: Mapped[list[str]] = mapped_column(JSONType, default=list)  # empty: every channel
    max_count: Mapped[int | None] = mapped_column(Integer)
    window_days: Mapped[int | None] = mapped_column(Integer)
    rule: Mapped[str | None] = mapped_column(Text)  # whom it applies to; empty: everyone
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CatalogueVersion(Base):
    """Every change of an offer or a policy, as the whole thing after the change."""

    __tablename__ = "catalogue_versions"
    __table_args__ = (UniqueConstraint("entity", "entity_id", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    entity: Mapped[str] = mapped_column(String(16))  # offer | policy
    entity_id: Mapped[int] = mapped_column(BigId)
    version: Mapped[int] = mapped_column(Integer)
    change: Mapped[str] = mapped_column(String(16))  # created | updated | archived
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    changed_by: Mapped[str | None] = mapped_column(String(200))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DecisionState(Base):
    """One row that every engine polls: has the catalogue, the learning or the model changed?"""

    __tablename__ = "decision_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    catalogue_version: Mapped[int] = mapped_column(BigInteger, default=0)
    stats_version: Mapped[int] = mapped_column(BigInteger, default=0)
    model_id: Mapped[int | None] = mapped_column(BigId)
    # Forward decay (see sync.py): counts are stored as worth at this moment (epoch seconds).
    landmark: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Decision(Base):
    """One answer to a decision request: what was shown, with scores, for learning and audit."""

    __tablename__ = "decisions"
    __table_args__ = (Index("ix_decisions_customer_created", "customer_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    # No foreign key, like the responses below: see DecisionResponse.
    customer_id: Mapped[int] = mapped_column(BigId)
    # Moves back on unmerge (db.customer_owned_tables); no index, like events.
    origin_customer_id: Mapped[int] = mapped_column(BigId)
    anonymous_id: Mapped[str | None] = mapped_column(String(255))
    channel: Mapped[str] = mapped_column(String(16))
    placement: Mapped[str | None] = mapped_column(String(100))
    context: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    control: Mapped[bool] = mapped_column(Boolean, default=False)
    # [{offer_id, key, version, rank, priority, propensity, reason, parts}, ...]
    offers: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    labels: Mapped[list[str]] = mapped_column(JSONType, default=list)  # learning cells
    considered: Mapped[int] = mapped_column(Integer, default=0)
    excluded: Mapped[dict[str, int]] = mapped_column(JSONType, default=dict)  # reason -> n
    blocked: Mapped[str | None] = mapped_column(String(200))  # why nothing could be offered
    catalogue_version: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DecisionResponse(Base):
    """What the customer did with a presented offer: impression, click, accept, reject, convert.

    No foreign keys (nor on ``decisions``): this log grows with every decision and
    response, relata alone writes it, from the decision and customer it has just read in
    the same transaction, and merge, unmerge, export and erasure find its rows by their
    ``customer_id`` column (``db.customer_owned_tables``, ``consent.person``). The three
    checks a row cost PostgreSQL a third of a batch of responses.
    """

    __tablename__ = "decision_responses"
    __table_args__ = (
        UniqueConstraint("decision_id", "offer_id", "kind"),
        Index("ix_decision_responses_customer_occurred", "customer_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    decision_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    offer_id: Mapped[int] = mapped_column(BigId)
    customer_id: Mapped[int] = mapped_column(BigId)
    origin_customer_id: Mapped[int] = mapped_column(BigId)
    channel: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Float)  # e.g. the revenue of a conversion
    via: Mapped[str] = mapped_column(String(16))  # decision (auto) | api | event
    event_id: Mapped[int | None] = mapped_column(BigId)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DecisionOutcome(Base):
    """The learning ledger: each presented offer is one show and at most one win.

    Unique per (decision, offer, kind), so repeated or concurrent responses count once.
    A queue for :func:`relata.decisions.sync.fold`, which adds unfolded rows to the
    counters and marks them folded. No foreign keys: erasure deletes decisions, and these
    rows hold nothing personal.
    """

    __tablename__ = "decision_outcomes"
    __table_args__ = (
        UniqueConstraint("decision_id", "offer_id", "kind"),
        Index(
            "ix_decision_outcomes_unfolded",
            "id",
            sqlite_where=text("folded = 0"),
            postgresql_where=text("NOT folded"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    decision_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    offer_id: Mapped[int] = mapped_column(BigId)
    kind: Mapped[str] = mapped_column(String(8))  # show | win
    channel: Mapped[str] = mapped_column(String(16))
    control: Mapped[bool] = mapped_column(Boolean)
    labels: Mapped[list[str]] = mapped_column(JSONType, default=list)  # cells, see bandit.py
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    folded: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class DecisionStat(Base):
    """Shows and wins of an offer in one learning cell (0: the offer overall), forward-decayed:
    a show at time s adds ``2^((s - landmark) / half_life)``, so at time t the stored count is
    worth ``count · 2^(-(t - landmark) / half_life)`` (landmark: ``decision_state.landmark``).
    ``at``: when the row was last written (epoch seconds).
    """

    __tablename__ = "decision_stats"
    __table_args__ = (Index("ix_decision_stats_version", "version"),)

    offer_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    cell: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    label: Mapped[str] = mapped_column(String(300), default="")
    shows: Mapped[float] = mapped_column(Float, default=0.0)
    wins: Mapped[float] = mapped_column(Float, default=0.0)
    at: Mapped[float] = mapped_column(Float)
    version: Mapped[int] = mapped_column(BigInteger)  # decision_state.stats_version when written


class DecisionUsage(Base):
    """Exact counts per scope and day, for caps, budgets and the performance report.

    Scopes: ``offer:<id>``, ``channel:<name>``. ``control`` splits the random control group.
    """

    __tablename__ = "decision_usage"

    scope: Mapped[str] = mapped_column(String(120), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    control: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    shows: Mapped[int] = mapped_column(Integer, default=0)
    wins: Mapped[int] = mapped_column(Integer, default=0)
    spent: Mapped[float] = mapped_column(Float, default=0.0)


class DecisionModel(Base):
    """A batch-trained model: the collaborative item similarities and the score weights."""

    __tablename__ = "decision_models"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    blob: Mapped[bytes | None] = mapped_column(LargeBinary)  # numpy arrays (np.savez)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


__all__ = [
    "CatalogueVersion",
    "ContactPolicy",
    "Decision",
    "DecisionModel",
    "DecisionOutcome",
    "DecisionResponse",
    "DecisionStat",
    "DecisionState",
    "DecisionUsage",
    "Offer",
]
