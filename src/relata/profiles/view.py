"""The 360° view: one customer with everything known about them, in a few indexed reads."""

from __future__ import annotations

import base64
from collections import defaultdict
from contextlib import suppress
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relata.decisions.reports import decisions_of
from relata.events import timeline
from relata.identity import service as identity
from relata.ingest.models import Source, SourceRecord
from relata.ingest.normalise import fold, normalise_email, normalise_phone
from relata.profiles import service as profiles
from relata.profiles.models import Customer, Holding
from relata.profiles.schemas import (
    CustomerRead,
    CustomerSummary,
    CustomerView,
    EventRead,
    HoldingRead,
    Holdings,
    IdentifierRead,
    SourceRecordRead,
    Timeline,
)
from relata.profiles.survivorship import unpack

HOLDINGS_SHOWN = 50
DECISIONS_SHOWN = 10
MAX_ID = 2**63 - 1  # the largest key either database can hold


class CursorError(ValueError):
    pass


def encode_cursor(at: datetime, event_id: int) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{event_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        at_text, id_text = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        at, event_id = datetime.fromisoformat(at_text), int(id_text)
    except (ValueError, UnicodeDecodeError):
        raise CursorError(f"invalid cursor {cursor[:80]!r}") from None
    if at.tzinfo is None or not 0 < event_id <= MAX_ID:
        raise CursorError(f"invalid cursor {cursor[:80]!r}")
    return at, event_id


def customer_read(customer: Customer) -> CustomerRead:
    data = {c: getattr(customer, c) for c in CustomerRead.model_fields if hasattr(customer, c)}
    data["age"] = profiles.age(customer.birth_date)
    data["provenance"] = unpack(customer.provenance)
    return CustomerRead.model_validate(data)


def _source_names(session: Session) -> dict[int, tuple[str, str]]:
    return {s.id: (s.name, s.channel) for s in session.scalars(select(Source))}


def view(
    session: Session, customer: Customer, page_size: int, before: str | None = None
) -> CustomerView:
    sources = _source_names(session)
    records = list(
        session.scalars(
            select(SourceRecord)
            .where(SourceRecord.customer_id == customer.id)
            .order_by(SourceRecord.updated_at.desc())
        )
    )
    record_source = {r.id: sources[r.source_id][0] for r in records}
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    for ident in identity.identifiers_of(session, customer.id):
        # Identifiers without a record (anonymous ids) were seen on events.
        seen[(ident.kind, ident.value)].add(record_source.get(ident.source_record_id, "events"))
    for r in records:
        seen[("external_id", f"{sources[r.source_id][0]}:{r.source_key}")].add(
            sources[r.source_id][0]
        )
    return CustomerView(
        customer=customer_read(customer),
        identifiers=[
            IdentifierRead(kind=k, value=v, sources=sorted(s)) for (k, v), s in sorted(seen.items())
        ],
        source_records=[
            SourceRecordRead(
                source=sources[r.source_id][0],
                channel=sources[r.source_id][1],
                source_key=r.source_key,
                data=r.data,
                attributes=r.attributes,
                created_at=r.created_at,
                updated_at=r.updated_at,
            )
            for r in records
        ],
        holdings=holdings_list(session, customer.id, HOLDINGS_SHOWN, sources=sources),
        timeline=timeline_page(session, customer.id, page_size, before, sources),
        decisions=decisions_of(session, customer.id, DECISIONS_SHOWN),
    )


def timeline_page(
    session: Session,
    customer_id: int,
    page_size: int,
    before: str | None,
    sources: dict[int, tuple[str, str]] | None = None,
) -> Timeline:
    sources = sources or _source_names(session)
    cursor = decode_cursor(before) if before else None
    events = timeline.page(session, customer_id, page_size + 1, cursor)
    more = len(events) > page_size
    events = events[:page_size]
    return Timeline(
        events=[
            EventRead(
                id=e.id,
                type=e.type,
                name=e.name,
                source=sources[e.source_id][0],
                occurred_at=e.occurred_at,
                properties=e.properties,
                context=e.context,
            )
            for e in events
        ],
        next_cursor=encode_cursor(events[-1].occurred_at, events[-1].id) if more else None,
    )


def holdings_list(
    session: Session,
    customer_id: int,
    limit: int,
    offset: int = 0,
    sources: dict[int, tuple[str, str]] | None = None,
) -> Holdings:
    """Newest first, with the total for paging."""
    sources = sources or _source_names(session)
    total = session.scalar(select(func.count()).where(Holding.customer_id == customer_id)) or 0
    rows = session.scalars(
        select(Holding)
        .where(Holding.customer_id == customer_id)
        .order_by(Holding.started_at.desc(), Holding.id.desc())
        .limit(limit)
        .offset(offset)
    )
    fields = [c for c in HoldingRead.model_fields if c != "source"]
    items = [
        HoldingRead.model_validate(
            {**{c: getattr(h, c) for c in fields}, "source": sources[h.source_id][0]}
        )
        for h in rows
    ]
    return Holdings(total=total, items=items)


def search(session: Session, q: str, limit: int = 20) -> list[CustomerSummary]:
    """Find customers by e-mail, phone, customer number, loyalty card or name, all indexed."""
    q = q.replace("\x00", "").strip()
    if not q:
        return []
    ids: list[int] = []
    for kind, value in _identifier_guesses(q):
        ids.extend(identity.find_by_identifier(session, kind, value, limit))
    tokens = fold(q).split()
    if tokens and len(ids) < limit:
        ids.extend(profiles.name_matches(session, tokens[:4], limit))
    resolved = list(dict.fromkeys(identity.resolve_id(session, i) for i in ids))[:limit]
    return [CustomerSummary.model_validate(c) for c in profiles.get_many(session, resolved)]


def _identifier_guesses(q: str) -> list[tuple[str, str]]:
    guesses = [("customer_number", q.replace(" ", "")), ("loyalty_card", q.replace(" ", ""))]
    if "@" in q:
        with suppress(ValueError):
            guesses.append(("email", normalise_email(q)))
    if sum(ch.isdigit() for ch in q) >= 5:
        with suppress(ValueError):
            guesses.append(("phone", normalise_phone(q)))
    return guesses
