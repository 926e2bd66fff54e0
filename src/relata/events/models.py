"""The timeline: everything that happens to a customer is an event."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column

from relata.db import Base, BigId, JSONType, UTCDateTime, utcnow


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("source_id", "message_id"),
        Index("ix_events_customer_time", "customer_id", "occurred_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    message_id: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    # Unmerge finds rows by customer_id first, then filters on this: no index of its own.
    # Bookkeeping for unmerge, written with customer_id (which has the foreign key);
    # a second key check per row would cost the import hot path on PostgreSQL.
    origin_customer_id: Mapped[int] = mapped_column(BigId)
    type: Mapped[str] = mapped_column(String(16))  # identify | track | page | alias | system
    name: Mapped[str | None] = mapped_column(String(200))
    user_id: Mapped[str | None] = mapped_column(String(255))
    anonymous_id: Mapped[str | None] = mapped_column(String(255))
    properties: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    context: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # False: sent without the visitor's personalisation consent (cookie banner): kept for
    # the purposes allowed, never used to profile them. True: the event sets no limit of
    # its own; the person's consent ledger decides (consent.service.may_use).
    profiling: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
