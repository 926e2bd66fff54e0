"""Writing to and reading from the timeline, for every domain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from relata.db import utcnow
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
