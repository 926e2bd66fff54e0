"""Sources, the records they deliver, and the quarantine for what was refused."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from relata.db import Base, BigId, JSONType, UTCDateTime, utcnow

CHANNELS = (
    "web",
    "shop",
    "pos",
    "hotline",
    "email",
    "newsletter",
    "post",
    "coupon",
    "social",
    "crm",
    "other",
)


class Source(Base):
    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    trust: Mapped[int] = mapped_column(Integer, default=50)
    # The mapping last used to import this source; quarantine retry reuses it.
    mapping: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SourceRecord(Base):
    """One row of one source, keyed by (source, source_key): what that source says."""

    __tablename__ = "source_records"
    __table_args__ = (UniqueConstraint("source_id", "source_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    source_key: Mapped[str] = mapped_column(String(255))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    # Unmerge finds rows by customer_id first, then filters on this: no index of its own.
    # Bookkeeping for unmerge, written with customer_id (which has the foreign key);
    # a second key check per row would cost the import hot path on PostgreSQL.
    origin_customer_id: Mapped[int] = mapped_column(BigId)
    # Canonical fields, normalised; dates as ISO strings.
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # Every other column of the source row, as delivered.
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # Identifiers that are not fields, e.g. anonymous ids seen with this user id.
    extra_ids: Mapped[list[list[str]]] = mapped_column(JSONType, default=list)
    content_hash: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QuarantineEntry(Base):
    """A row relata could not accept, kept with its reason until it is fixed."""

    __tablename__ = "quarantine"
    __table_args__ = (
        UniqueConstraint("source_id", "raw_hash"),
        Index("ix_quarantine_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    origin: Mapped[str] = mapped_column(String(500))  # file name or "api"
    line_no: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # "row": JSON object of column -> value; "line": the undecodable text itself.
    raw_kind: Mapped[str] = mapped_column(String(8))
    raw: Mapped[str] = mapped_column(Text)
    raw_hash: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | resolved
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
