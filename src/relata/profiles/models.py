"""The customer (golden record) and what the customer holds."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Date,
    ForeignKey,
    Index,
    Numeric,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from relata.db import Base, BigId, JSONType, UTCDateTime, utcnow

# Byte order on PostgreSQL, so that prefix range scans do not depend on the locale.
SearchKey = String(200).with_variant(String(200, collation="C"), "postgresql")


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        Index("ix_customers_last_name_key", "last_name_key"),
        Index("ix_customers_first_name_key", "first_name_key"),
        # Only merged-away customers have one: unmerge walks them; the rest cost nothing.
        Index(
            "ix_customers_merged_into_id",
            "merged_into_id",
            sqlite_where=text("merged_into_id IS NOT NULL"),
            postgresql_where=text("merged_into_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | merged
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), nullable=True)

    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    birth_date: Mapped[date | None] = mapped_column(Date)
    gender: Mapped[str | None] = mapped_column(String(8))
    company: Mapped[str | None] = mapped_column(String(300))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    street: Mapped[str | None] = mapped_column(String(300))
    house_number: Mapped[str | None] = mapped_column(String(32))
    postcode: Mapped[str | None] = mapped_column(String(16))
    city: Mapped[str | None] = mapped_column(String(200))
    country: Mapped[str | None] = mapped_column(String(2))
    customer_number: Mapped[str | None] = mapped_column(String(64))
    loyalty_card: Mapped[str | None] = mapped_column(String(64))
    # {"f": {field: i}, "o": [[source, source_key, ISO time, rule], ...]}; see survivorship.pack
    provenance: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Folded names (lower case, umlauts spelled out) for indexed prefix search.
    first_name_key: Mapped[str | None] = mapped_column(SearchKey)
    last_name_key: Mapped[str | None] = mapped_column(SearchKey)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Holding(Base):
    """A product a customer bought (order line) or holds (contract)."""

    __tablename__ = "holdings"
    __table_args__ = (
        UniqueConstraint("source_id", "kind", "reference", "line"),
        Index("ix_holdings_customer_started", "customer_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    # Unmerge finds rows by customer_id first, then filters on this: no index of its own.
    # Bookkeeping for unmerge, written with customer_id (which has the foreign key);
    # a second key check per row would cost the import hot path on PostgreSQL.
    origin_customer_id: Mapped[int] = mapped_column(BigId)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))  # purchase | contract
    reference: Mapped[str] = mapped_column(String(128))  # order id or contract id
    line: Mapped[str] = mapped_column(String(128))  # position within the order
    product_id: Mapped[str | None] = mapped_column(String(128))
    product_name: Mapped[str | None] = mapped_column(String(300))
    category: Mapped[str | None] = mapped_column(String(200))
    quantity: Mapped[Decimal | None] = mapped_column(Numeric(14, 3))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    currency: Mapped[str | None] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))  # completed | active | ended
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
