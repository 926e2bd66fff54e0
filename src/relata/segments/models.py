"""Segments, every version of their rule, and who is in them since when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from relata.db import Base, BigId, JSONType, UTCDateTime, utcnow
from relata.events.models import Event


class Segment(Base):
    """A named rule; ``rule`` is the current version's JSON form."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    rule: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When membership was last materialised for every customer (relata segments refresh).
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SegmentVersion(Base):
    """Every rule a segment ever had, in both forms as saved."""

    __tablename__ = "segment_versions"
    __table_args__ = (UniqueConstraint("segment_id", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    rule: Mapped[dict[str, Any]] = mapped_column(JSONType)
    text: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SegmentMembership(Base):
    """A customer's stay in a segment: open (``left_at`` NULL) while they are a member.

    Not moved by merges (no ``origin_customer_id``): a merged-away customer's stays are
    closed and the survivor is evaluated afresh.
    """

    __tablename__ = "segment_memberships"
    __table_args__ = (
        # One open stay per customer and segment; also lists a segment's members.
        Index(
            "uq_segment_memberships_open",
            "segment_id",
            "customer_id",
            unique=True,
            sqlite_where=text("left_at IS NULL"),
            postgresql_where=text("left_at IS NULL"),
        ),
        # A customer's current segments, read by every live re-evaluation.
        Index(
            "ix_segment_memberships_customer_open",
            "customer_id",
            sqlite_where=text("left_at IS NULL"),
            postgresql_where=text("left_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    version: Mapped[int] = mapped_column(Integer)  # the version of the rule that let them in
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


# Segments count and find events by name and time ("count(events "Order Completed" in last
# 90 days) >= 2"). Covering: with customer_id and profiling in it, PostgreSQL answers such
# a condition over 10,000,000 events from the index alone (0.4 s instead of 1.0 s for the
# benchmark's count; docs/benchmarks.md, which also gives its cost to event intake).
# Declared here, on the events table, because segments are what need it.
_events = Event.__table__
Index(
    "ix_events_name_occurred_at",
    _events.c.name,
    _events.c.occurred_at,
    _events.c.customer_id,
    _events.c.profiling,
)
