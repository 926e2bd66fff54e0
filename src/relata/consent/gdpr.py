"""Art. 15 access: one JSON document with everything relata holds about a person.

The person is the customer and everyone merged into it. Tables added by later domains
(decisions, messages, …) that refer to a customer appear under ``other`` on their own,
so the export never silently misses a new kind of data.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from relata.config import Settings
from relata.consent import person, quarantined
from relata.consent import service as consent
from relata.consent.models import ConsentToken
from relata.db import utcnow
from relata.events.models import Event
from relata.identity.models import Identifier, Merge
from relata.ingest.models import QuarantineEntry, Source, SourceRecord
from relata.profiles.models import Customer, Holding
from relata.profiles.view import customer_read

FORMAT = "relata-gdpr-export/1"


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _columns(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {c.key: getattr(obj, c.key) for c in obj.__table__.c if c.key not in skip}


def _records(session: Session, ids: list[int], names: dict[int, str]) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(SourceRecord).where(SourceRecord.customer_id.in_(ids)).order_by(SourceRecord.id)
    )
    return [
        {"source": names[r.source_id], **_columns(r, ("id", "source_id", "content_hash"))}
        for r in rows
    ]


def _events(session: Session, ids: list[int], names: dict[int, str]) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Event).where(Event.customer_id.in_(ids)).order_by(Event.occurred_at, Event.id)
    )
    return [{"source": names[e.source_id], **_columns(e, ("source_id",))} for e in rows]


def _consents(session: Session, root: int, ids: list[int], settings: Settings) -> dict[str, Any]:
    states = consent.states(session, root, settings)
    tokens = session.scalars(select(ConsentToken).where(ConsentToken.customer_id.in_(ids)))
    return {
        "current": [
            {"purpose": p, "channel": c, "status": s.status, "since": s.since}
            for (p, c), s in sorted(states.items())
        ],
        "ledger": [_columns(e) for e in consent.entries(session, root)],
        # Never the token itself: only what was asked and when.
        "confirmations": [_columns(t, ("token_hash",)) for t in tokens],
    }


def _quarantine(
    session: Session, found: person.Identity, names: dict[int, str], settings: Settings
) -> list[dict[str, Any]]:
    ids = quarantined.about(session, found.quarantine, settings.default_region)
    rows = session.scalars(
        select(QuarantineEntry).where(QuarantineEntry.id.in_(ids)).order_by(QuarantineEntry.id)
    )
    return [{"source": names[q.source_id], **_columns(q, ("source_id", "raw_hash"))} for q in rows]


def export(session: Session, customer_id: int, settings: Settings) -> dict[str, Any]:
    """The whole person as one JSON-ready document; a merged-away id exports its survivor."""
    root = person.root_customer(session, customer_id, follow=True)
    ids = person.members(session, root.id)
    names = dict(session.execute(select(Source.id, Source.name)).all())
    found = person.identity_of(session, ids)
    merged = session.scalars(select(Customer).where(Customer.id.in_(ids), Customer.id != root.id))
    document = {
        "format": FORMAT,
        "generated_at": utcnow(),
        "customer_id": root.id,
        "requested_id": customer_id,
        "golden_record": customer_read(root).model_dump(),
        # Customers later merged into this one keep their last golden record.
        "merged_customers": [customer_read(c).model_dump() for c in merged],
        "identifiers": [
            _columns(i, ("id",))
            for i in session.scalars(
                select(Identifier)
                .where(Identifier.customer_id.in_(ids))
                .order_by(Identifier.kind, Identifier.value)
            )
        ],
        "source_records": _records(session, ids, names),
        "events": _events(session, ids, names),
        "holdings": [
            {"source": names[h.source_id], **_columns(h, ("source_id",))}
            for h in session.scalars(
                select(Holding).where(Holding.customer_id.in_(ids)).order_by(Holding.id)
            )
        ],
        "consents": _consents(session, root.id, ids, settings),
        "merges": [
            _columns(m)
            for m in session.scalars(
                select(Merge)
                .where(Merge.survivor_id.in_(ids) | Merge.merged_id.in_(ids))
                .order_by(Merge.id)
            )
        ],
        "quarantine": _quarantine(session, found, names, settings),
        "other": {
            table.name: person.rows_about(session, table, columns, ids)
            for table, columns in person.other_tables()
        },
    }
    return jsonable(document)
