"""Identifiers that link records to customers, and the log of every merge."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from relata.db import Base, BigId, JSONType, UTCDateTime, utcnow


class Identifier(Base):
    """(kind, value) seen on a source record, or an anonymous id seen on events."""

    __tablename__ = "identifiers"
    __table_args__ = (Index("ix_identifiers_kind_value", "kind", "value"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(320))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    # Unmerge finds rows by customer_id first, then filters on this: no index of its own.
    # Bookkeeping for unmerge, written with customer_id (which has the foreign key);
    # a second key check per row would cost the import hot path on PostgreSQL.
    origin_customer_id: Mapped[int] = mapped_column(BigId)
    # Neither indexed nor a foreign key: every lookup by record also knows the customer,
    # and an import writes three identifiers a row, so each index or key check here
    # costs the hot path. Identifiers are written and deleted with their record.
    source_record_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Merge(Base):
    """``merged_id`` was folded into ``survivor_id``; undone when ``undone_at`` is set."""

    __tablename__ = "merges"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    survivor_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    merged_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    reason: Mapped[str] = mapped_column(String(500))
    # Both golden records as they were just before the merge.
    before: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
