"""Tables of probabilistic matching: trained models, the review queue, rejected pairs and
the blocking keys that real-time matching looks candidates up by."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from relata.db import Base, BigId, JSONType, UTCDateTime, utcnow


class MatchModel(Base):
    """A trained model; the highest version is the one in use until the next training."""

    __tablename__ = "match_models"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    trained_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    backend: Mapped[str] = mapped_column(String(16))
    # Hash of the comparison spec in code: a model trained on another spec is refused.
    spec_hash: Mapped[str] = mapped_column(String(64))
    # Splink's settings dict with the trained m and u (what Linker(…, settings) takes).
    splink: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # Match weight per comparison level, prior and term frequencies: the Python scorer's.
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)
    stats: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class MatchReview(Base):
    """A pair of customers in the review band, waiting for a person's decision."""

    __tablename__ = "match_reviews"
    __table_args__ = (
        UniqueConstraint("customer_a_id", "customer_b_id"),
        Index("ix_match_reviews_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # customer_a_id < customer_b_id, as proposed; both may since have been merged away.
    customer_a_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    customer_b_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    match_weight: Mapped[float] = mapped_column(Float)
    match_probability: Mapped[float] = mapped_column(Float)
    model_version: Mapped[int] = mapped_column(Integer)
    # The waterfall of the best-scoring record pair: comparison, level, values, weight.
    explanation: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open|accepted|rejected|stale
    merge_id: Mapped[int | None] = mapped_column(ForeignKey("merges.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class MatchRejection(Base):
    """Two customers a person said are different: never proposed or merged again.

    Stored with the ids as they were; a check resolves both to their current customers,
    so the rejection holds after either side is merged with someone else.
    """

    __tablename__ = "match_rejections"
    __table_args__ = (UniqueConstraint("customer_a_id", "customer_b_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_a_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    customer_b_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    reason: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MatchKey(Base):
    """A blocking key of a customer's golden record, hashed to 64 bits.

    Real-time matching finds candidates by these keys through the primary key's index.
    Written by `relata dedupe` (all customers) and by real-time matching (new ones), never
    by bulk import, so import speed does not pay for it. No foreign key: a stale key
    only adds a candidate, which is resolved to its current customer and scored.
    """

    __tablename__ = "match_keys"
    # SQLite: the primary key is the table (no rowid beside it), half the size.
    __table_args__ = ({"sqlite_with_rowid": False},)

    key_hash: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    customer_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
