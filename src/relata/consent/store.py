"""The ledger's store: appending entries, reading them, and the permission check.

Every later part calls :func:`may_use` (as ``consent.service.may_use``) before it uses a
person's data or contacts them. Functions take a session and flush; the caller owns the
transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from relata.config import Settings
from relata.consent import cache
from relata.consent.errors import (
    ConsentError,
    CustomerErased,
    CustomerNotFound,
    EntryNotFound,
)
from relata.consent.ledger import ACTIONS, CHANNELS, UNKNOWN, Entry, Key, State, derive
from relata.consent.models import ConsentEntry
from relata.db import utcnow
from relata.profiles import service as profiles
from relata.profiles.models import Customer

CHUNK = 500
MAX_EVIDENCE = 2000  # characters of one evidence value; a form name or a user agent


def check_key(settings: Settings, purpose: str, channel: str) -> None:
    if purpose not in settings.consent_purposes:
        raise ConsentError(
            f"unknown purpose {purpose!r}; configured: {', '.join(settings.consent_purposes)}"
        )
    if channel not in CHANNELS:
        raise ConsentError(f"unknown channel {channel!r}; known: {', '.join(CHANNELS)}")


def active_customer(session: Session, customer_id: int) -> Customer:
    """The customer that ``customer_id`` is or was merged into; refused if none or erased."""
    customer = profiles.resolve(session, customer_id)
    if customer is None:
        raise CustomerNotFound(f"no customer with id {customer_id}")
    if customer.status == "erased":
        raise CustomerErased(f"customer {customer_id} was erased")
    return customer


def _origins(session: Session, customer_id: int) -> set[int]:
    return set(
        session.scalars(
            select(ConsentEntry.origin_customer_id)
            .where(ConsentEntry.customer_id == customer_id)
            .distinct()
        )
    )


def _clean_evidence(evidence: Mapping[str, Any] | None) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for k, v in (evidence or {}).items():
        if v is None or v == "":
            continue
        cleaned[str(k)[:64]] = (
            str(v).replace("\x00", "")[:MAX_EVIDENCE] if isinstance(v, str) else v
        )
    return cleaned


def when(occurred_at: datetime | None, now: datetime) -> datetime:
    if occurred_at is None:
        return now
    if occurred_at.tzinfo is None:
        raise ConsentError("occurred_at needs a time zone, e.g. 2026-05-01T10:00:00Z")
    # A consent cannot happen after it is recorded. A future date would also outrank every
    # later revocation until that date: clamp it to now.
    return min(occurred_at.astimezone(UTC), now)


def record(
    session: Session,
    settings: Settings,
    customer_id: int,
    purpose: str,
    channel: str,
    action: str,
    *,
    via: str,
    source: str | None = None,
    source_key: str | None = None,
    text_version: str | None = None,
    evidence: Mapping[str, Any] | None = None,
    occurred_at: datetime | None = None,
    origin: int | None = None,
    covers: Iterable[int] | None = None,
    live: bool = True,
) -> ConsentEntry:
    """Append one grant, revocation or request to the customer's ledger.

    ``covers`` defaults to every side the customer's ledger has: a person acting on the
    customer as it is now (UI, API, event) speaks for all of it.
    """
    check_key(settings, purpose, channel)
    if action not in ACTIONS:
        raise ConsentError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
    customer = active_customer(session, customer_id)
    now = utcnow()
    origin = customer.id if origin is None else origin
    sides = _origins(session, customer.id) if covers is None else set(covers)
    entry = ConsentEntry(
        customer_id=customer.id,
        origin_customer_id=origin,
        purpose=purpose,
        channel=channel,
        action=action,
        occurred_at=when(occurred_at, now),
        recorded_at=now,
        via=via,
        source=source[:64] if source else None,
        source_key=source_key[:255] if source_key else None,
        text_version=text_version[:200] if text_version else None,
        evidence=_clean_evidence(evidence),
        covers=sorted(sides | {origin}),
    )
    session.add(entry)
    session.flush()
    cache.invalidate(session, [customer.id])
    if live:  # consent fields are rule fields: the customer's segments follow at once
        from relata.segments import membership  # segments read consent: import late

        membership.reevaluate(session, [customer.id])
    return entry


# --- reading the ledger ------------------------------------------------------------------


def entries(session: Session, customer_id: int) -> list[ConsentEntry]:
    """The customer's ledger, oldest first."""
    return list(
        session.scalars(
            select(ConsentEntry)
            .where(ConsentEntry.customer_id == customer_id)
            .order_by(ConsentEntry.id)
        )
    )


def entry(session: Session, customer_id: int, entry_id: int) -> ConsentEntry:
    """One entry of this customer's ledger; another customer's is "not found", never shown."""
    found = session.get(ConsentEntry, entry_id)
    if found is None or found.customer_id != customer_id:
        raise EntryNotFound(f"customer {customer_id} has no consent entry {entry_id}")
    return found


def _derived(session: Session, customer_id: int) -> dict[Key, State]:
    rows = session.execute(
        select(
            ConsentEntry.purpose,
            ConsentEntry.channel,
            ConsentEntry.action,
            ConsentEntry.occurred_at,
            ConsentEntry.origin_customer_id,
            ConsentEntry.covers,
            ConsentEntry.id,
        ).where(ConsentEntry.customer_id == customer_id)
    )
    return derive(
        Entry(p, c, a, at, origin, frozenset(covers or ()), i)
        for p, c, a, at, origin, covers, i in rows
    )


def states(session: Session, customer_id: int, settings: Settings) -> dict[Key, State]:
    """Every purpose × channel the customer's ledger mentions, derived; cached per process.

    A merged-away id answers for its survivor; an unknown or erased customer has none.
    """
    store = cache.for_session(session)
    found = store.get(customer_id, settings.consent_cache_seconds)
    if found is not None:
        return found
    customer = profiles.resolve(session, customer_id)
    if customer is None or customer.status == "erased":
        result: dict[Key, State] = {}
        root = customer_id
    else:
        result, root = _derived(session, customer.id), customer.id
    store.put(customer_id, result, settings.consent_cache_size, root=root)
    return result


def prime(
    session: Session, customer_id: int, rows: Iterable[tuple[Any, ...]], settings: Settings
) -> None:
    """Cache an active customer's states from their ledger rows, read by a caller with other
    data in one statement (a decision's cache miss): what ``states`` would read itself.
    Rows as ``_derived`` selects them: purpose, channel, action, occurred_at, origin
    customer, covers, id."""
    store = cache.for_session(session)
    if store.get(customer_id, settings.consent_cache_seconds) is not None:
        return
    result = derive(
        Entry(p, c, a, at, origin, frozenset(covers or ()), i)
        for p, c, a, at, origin, covers, i in rows
    )
    store.put(customer_id, result, settings.consent_cache_size, root=customer_id)


def may_use(
    session: Session, customer_id: int, purpose: str, channel: str, settings: Settings
) -> bool:
    """May relata use ``purpose`` on ``channel`` for this customer now? Only a grant says yes.

    Call it before using a person's data or contacting them. Served from a per-process
    cache (see ``consent.cache``); a miss costs one indexed read of the customer's ledger.
    """
    check_key(settings, purpose, channel)
    return states(session, customer_id, settings).get((purpose, channel), UNKNOWN).allowed


def state_of(
    session: Session, customer_id: int, purpose: str, channel: str, settings: Settings
) -> State:
    check_key(settings, purpose, channel)
    return states(session, customer_id, settings).get((purpose, channel), UNKNOWN)


def matrix(
    session: Session,
    customer_id: int,
    settings: Settings,
    purpose: str | None = None,
    channel: str | None = None,
) -> list[tuple[str, str, State]]:
    """Every configured purpose × channel (or just the ones asked for) with its state."""
    if purpose is not None or channel is not None:
        check_key(settings, purpose or settings.consent_purposes[0], channel or CHANNELS[0])
    found = states(session, customer_id, settings)
    return [
        (p, c, found.get((p, c), UNKNOWN))
        for p in ([purpose] if purpose else settings.consent_purposes)
        for c in ([channel] if channel else CHANNELS)
    ]
