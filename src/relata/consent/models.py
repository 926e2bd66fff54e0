"""The consent ledger, double opt-in tokens, erasure tombstones and instance secrets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from relata.db import Base, BigId, JSONType, UTCDateTime, utcnow


class ConsentEntry(Base):
    """One grant, revocation or opt-in request: appended, never changed.

    The current state is derived from all entries of a customer (``consent.ledger``).
    ``customer_id`` and ``origin_customer_id`` make the ledger move with merges and
    come back on unmerge, like every customer-owned table.
    """

    __tablename__ = "consent_entries"
    # Every read is "all entries of one customer" (derive, merge, unmerge, erase).
    __table_args__ = (Index("ix_consent_entries_customer_id_id", "customer_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    # Bookkeeping for unmerge, like the other customer-owned tables: no index of its own.
    origin_customer_id: Mapped[int] = mapped_column(BigId)
    purpose: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(16))  # grant | revoke | request
    # When the person gave or withdrew it (may lie before recorded_at: imports, events).
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    via: Mapped[str] = mapped_column(String(16))  # import | event | api | ui | cli | link
    # Who says so: a source's name (import, event) or the caller's label (api, ui).
    source: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The source record (import) or message (event) the entry came from.
    source_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    text_version: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # IP, form, user, user agent, token or message id: what proves the entry.
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # The origins (customers before merges) whose entries this one was given over: a
    # grant overrides a revocation only of a side it covers, so after a merge a grant
    # of one side never outweighs a revocation of the other (see ledger.derive).
    covers: Mapped[list[int]] = mapped_column(JSONType, default=list)


class ConsentToken(Base):
    """A double opt-in confirmation: single use, expires; only its hash is stored."""

    __tablename__ = "consent_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex
    # Indexed: merges move it, erasure deletes by it.
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    origin_customer_id: Mapped[int] = mapped_column(BigId)
    entry_id: Mapped[int] = mapped_column(ForeignKey("consent_entries.id"))  # the request
    purpose: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    text_version: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ErasureTombstone(Base):
    """A salted hash of one identifier of an erased person, and nothing else.

    No ``origin_customer_id``: an erased customer never merges, so tombstones never move.
    """

    __tablename__ = "erasure_tombstones"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # HMAC-SHA256(salt, kind + value), hex; unique: two erasures may share a household e-mail.
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InstanceSecret(Base):
    """A key generated on first use, shared by every process on this database.

    ``value`` is NULL when the key comes from the settings; ``fingerprint`` is kept
    either way, so a changed key is refused instead of silently orphaning tombstones
    or every unsubscribe link already sent.
    """

    __tablename__ = "instance_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str | None] = mapped_column(String(128), nullable=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
