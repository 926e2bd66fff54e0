"""The audit log: who read or changed which person's data, when, through which route.

Rows are only ever inserted (the database refuses UPDATE and DELETE, see migration 0005).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.orm import Session

from relata.auth.models import AuditEntry
from relata.db import defer_insert

MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class AuditRecord:
    at: datetime
    actor_kind: str  # user | api_key
    actor_id: int
    actor_name: str
    action: str  # read | change
    method: str
    route: str
    customer_id: int | None
    status: int
    id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_INSERT = insert(AuditEntry.__table__)  # built once: one row on every audited request
_COLUMNS = [f for f in AuditRecord.__slots__ if f != "id"]  # type: ignore[attr-defined]


def record(session: Session | Connection, entry: AuditRecord) -> None:
    """One row; in the group-commit writer's session, with the other requests' rows."""
    if isinstance(session, Session):
        row = tuple(getattr(entry, c) for c in _COLUMNS)
        defer_insert(session, AuditEntry.__table__, _COLUMNS, [row])  # type: ignore[arg-type]
        return
    values = entry.as_dict()
    values.pop("id")
    session.execute(_INSERT, values)


def entries(
    session: Session,
    customer_id: int | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> list[AuditRecord]:
    """Newest first; ``before_id`` pages on to older entries."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(min(limit, MAX_LIMIT))
    if customer_id is not None:
        query = query.where(AuditEntry.customer_id == customer_id)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return [
        AuditRecord(
            at=e.at,
            actor_kind=e.actor_kind,
            actor_id=e.actor_id,
            actor_name=e.actor_name,
            action=e.action,
            method=e.method,
            route=e.route,
            customer_id=e.customer_id,
            status=e.status,
            id=e.id,
        )
        for e in session.scalars(query)
    ]
