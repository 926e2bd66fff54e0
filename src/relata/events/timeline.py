"""Writing to and reading from the timeline, for every domain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from relata.db import allocate_ids, bulk_insert, utcnow
from relata.events.models import Event
from relata.ingest.sources import system_source


def record_system_event(
    session: Session, customer_id: int, name: str, message_id: str, properties: dict[str, Any]
) -> None:
    """An event relata itself observed (a merge, an unmerge), on the customer's timeline."""
    now = utcnow()
    session.add(
        Event(
            source_id=system_source(session).id,
            message_id=message_id,
            customer_id=customer_id,
            origin_customer_id=customer_id,
            type="system",
            name=name,
            properties=properties,
            context={},
            occurred_at=now,
            received_at=now,
        )
    )


def record_system_events(
    session: Session, events: Sequence[tuple[int, str, str, dict[str, Any]]]
) -> None:
    """Many system events at once: (customer_id, name, message_id, properties) each."""
    if not events:
        return
    now = utcnow()
    source_id = system_source(session).id
    table = Event.__table__
    ids = allocate_ids(session, table, len(events))
    columns = [
        "id",
        "source_id",
        "message_id",
        "customer_id",
        "origin_customer_id",
        "type",
        "name",
        "properties",
        "context",
        "occurred_at",
        "received_at",
    ]
    rows = [
        (eid, source_id, message_id, cid, cid, "system", name, properties, {}, now, now)
        for eid, (cid, name, message_id, properties) in zip(ids, events, strict=True)
    ]
    bulk_insert(session, table, columns, rows)


def page(
    session: Session, customer_id: int, limit: int, before: tuple[datetime, int] | None = None
) -> list[Event]:
    """Newest first; ``before`` is the (occurred_at, id) of the last event already shown."""
    stmt = select(Event).where(Event.customer_id == customer_id)
    if before is not None:
        at, event_id = before
        # A row-value comparison lets the (customer_id, occurred_at, id) index seek to the
        # cursor; the equivalent OR walks every newer event first.
        stmt = stmt.where(tuple_(Event.occurred_at, Event.id) < tuple_(at, event_id))
    stmt = stmt.order_by(Event.occurred_at.desc(), Event.id.desc()).limit(limit)
    return list(session.scalars(stmt))
