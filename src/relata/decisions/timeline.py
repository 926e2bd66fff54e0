"""Decisions and responses on the customer's timeline, written on the hot path.

Like ``events.timeline.record_system_events`` (system events of relata's own source),
but one INSERT straight through the driver with the source's id remembered per database:
the general function looks the source up and reserves ids first, three statements where
a decision can afford one.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from relata.db import bulk_insert, defer_insert, utcnow
from relata.events.models import Event
from relata.ingest.sources import system_source

_source_ids: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _source_id(session: Session) -> int:
    pool = session.get_bind().engine.pool
    with _lock:
        found = _source_ids.get(pool)
    if found is None:
        found = system_source(session).id
        with _lock:
            _source_ids[pool] = found
    return found


def add(
    session: Session, events: Sequence[tuple[int, str, str, dict[str, Any]]], defer: bool = False
) -> None:
    """(customer_id, name, message_id, properties) each, as system events of now.

    ``defer``: with the other rows of a group commit (``db.defer_insert``), for events
    whose message ids are new by construction (a decision's)."""
    if not events:
        return
    now = utcnow()
    source_id = _source_id(session)
    (defer_insert if defer else bulk_insert)(
        session,
        Event.__table__,
        [
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
            "profiling",
        ],
        [
            (source_id, message_id, cid, cid, "system", name, properties, {}, now, now, True)
            for cid, name, message_id, properties in events
        ],
    )
