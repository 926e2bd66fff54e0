"""Decisions and responses on the customer's timeline, written on the hot path.

Like ``events.timeline.record_system_events`` (system events of relata's own source),
but one INSERT with the source's id remembered per database: the general function
looks the source up and reserves ids first, three statements where a decision can
afford one.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from relata.db import utcnow
from relata.events.models import Event
from relata.ingest.sources import system_source

_source_ids: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _source_id(session: Session) -> int:
    pool = session.get_bind().pool
    with _lock:
        found = _source_ids.get(pool)
    if found is None:
        found = system_source(session).id
        with _lock:
            _source_ids[pool] = found
    return found


def add(session: Session, events: Sequence[tuple[int, str, str, dict[str, Any]]]) -> None:
    """(customer_id, name, message_id, properties) each, as system events of now."""
    if not events:
        return
    now = utcnow()
    source_id = _source_id(session)
    session.execute(
        Event.__table__.insert(),
        [
            {
                "source_id": source_id,
                "message_id": message_id,
                "customer_id": cid,
                "origin_customer_id": cid,
                "type": "system",
                "name": name,
                "properties": properties,
                "context": {},
                "occurred_at": now,
                "received_at": now,
                "profiling": True,
            }
            for cid, name, message_id, properties in events
        ],
    )
