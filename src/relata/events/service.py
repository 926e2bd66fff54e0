"""Taking events in: who they belong to, stored once, and what they mean for holdings."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from relata.config import Settings
from relata.consent import events as consent_events
from relata.consent.cookies import allows_profiling
from relata.db import allocate_ids, bulk_insert, insert_ignoring_duplicates, lock_keys, utcnow
from relata.decisions import service as decisions
from relata.events.models import Event
from relata.events.purchases import HOLDING_EVENTS, holdings_from
from relata.events.schemas import Alias, Identify, Track
from relata.events.traits import split_traits
from relata.identity import service as identity
from relata.identity.matching import realtime
from relata.ingest.models import Source, SourceRecord
from relata.ingest.normalise import normalise_record
from relata.ingest.records import RecordInput, upsert_records
from relata.ingest.sources import SourceError, ensure_source, get_source
from relata.profiles.models import Holding
from relata.segments import service as segments

DEFAULT_EVENT_SOURCE = "web"
CHUNK = 500

AnyMessage = Identify | Track | Alias | object


@dataclass(frozen=True, slots=True)
class Ingested:
    accepted: int
    duplicates: int
    customers: list[int]  # per accepted message, in order
    quarantined: int = 0  # erased people's messages, consent for unknown purposes


def message_id(msg: object) -> str:
    given = getattr(msg, "messageId", None)
    if given:
        return given
    # Without a messageId the content is the identity: the same payload twice is one event.
    payload = msg.model_dump(mode="json", exclude={"source"})  # type: ignore[attr-defined]
    return "sha1:" + hashlib.sha1(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def event_source(session: Session, name: str | None) -> Source:
    if name is None:
        return ensure_source(session, DEFAULT_EVENT_SOURCE, "web", 20)
    source = get_source(session, name)
    if source is None:
        raise SourceError(f"unknown source {name!r}")
    return source


def record_key(msg: object) -> str | None:
    """The source record a message speaks for: its user, or an anonymous visitor's traits."""
    user = getattr(msg, "userId", None)
    if user:
        return user
    if isinstance(msg, Identify) and msg.traits:
        return f"anonymous:{msg.anonymousId}"
    return None


def _record_input(
    msg: object, key: str, settings: Settings, known_users: set[tuple[int, str]], source_id: int
) -> RecordInput:
    fields, attributes = split_traits(getattr(msg, "traits", {}) or {})
    normal = normalise_record(fields, region=settings.default_region, require_identity=False)
    for name, raw in normal.dropped.items():
        attributes[f"_invalid_{name}"] = raw
    extra: list[tuple[str, str]] = []
    anonymous = msg.anonymousId  # type: ignore[attr-defined]
    if anonymous:
        extra.append(("anonymous_id", anonymous))
    if isinstance(msg, Alias) and (source_id, msg.previousId) not in known_users:
        # An earlier user id is merged by _merge_aliased_users; only a visitor's id is one.
        extra.append(("anonymous_id", msg.previousId))
    return RecordInput(key, normal.data, attributes, tuple(extra))


def ingest(
    session: Session, messages: Sequence[object], settings: Settings, source_name: str | None = None
) -> Ingested:
    """Store a batch of validated messages; a message seen before is skipped."""
    sources: dict[str | None, Source] = {}
    for msg in messages:
        name = getattr(msg, "source", None) or source_name
        if name not in sources:
            sources[name] = event_source(session, name)
    keyed = [
        (sources[getattr(m, "source", None) or source_name], message_id(m), m) for m in messages
    ]
    lock_keys(session, [f"msg:{src.id}:{mid}" for src, mid, _ in keyed])
    seen = _stored_ids(session, keyed)
    fresh, duplicates = [], 0
    for src, mid, msg in keyed:
        if (src.id, mid) in seen:
            duplicates += 1
            continue
        seen.add((src.id, mid))
        fresh.append((src, mid, msg))
    fresh, quarantined = consent_events.screen(session, fresh, settings)
    customers = _customers(session, fresh, settings)
    stored = _store(session, fresh, customers)
    # Offer Accepted/Clicked/... with a decision_id: responses that teach the decisions.
    decisions.responses_from_events(session, stored)
    consent_events.record_consents(session, fresh, customers, settings)
    # Live segments: whoever an event arrived for is re-evaluated in this transaction.
    segments.reevaluate(session, customers)
    return Ingested(len(fresh), duplicates, customers, quarantined)


def _stored_ids(session: Session, keyed: list[tuple[Source, str, object]]) -> set[tuple[int, str]]:
    by_source: dict[int, list[str]] = defaultdict(list)
    for src, mid, _ in keyed:
        by_source[src.id].append(mid)
    seen: set[tuple[int, str]] = set()
    for sid, mids in by_source.items():
        for i in range(0, len(mids), CHUNK):
            rows = session.execute(
                select(Event.message_id).where(
                    Event.source_id == sid, Event.message_id.in_(mids[i : i + CHUNK])
                )
            )
            seen.update((sid, mid) for (mid,) in rows)
    return seen


def _customers(
    session: Session, fresh: list[tuple[Source, str, object]], settings: Settings
) -> list[int]:
    """The customer of each message: user ids as source records, the rest anonymous."""
    by_source: dict[int, tuple[Source, list[RecordInput]]] = {}
    known_users = _known_users(session, fresh)
    for src, _, msg in fresh:
        key = record_key(msg)
        if key:
            by_source.setdefault(src.id, (src, []))[1].append(
                _record_input(msg, key, settings, known_users, src.id)
            )
    anonymous_ids = [m.anonymousId for _, _, m in fresh if not record_key(m)]  # type: ignore[attr-defined]
    # Every key this batch will lock, in one sorted call: the calls below take them again
    # (advisory locks are re-entrant), so two batches can never wait on each other in turn.
    strong = set(settings.strong_identifiers)
    lock_keys(
        session,
        [
            *(f"rec:{src.id}:{r.source_key}" for src, inputs in by_source.values() for r in inputs),
            *identity.lock_names(
                k
                for _, inputs in by_source.values()
                for r in inputs
                for k in identity.record_identifiers(r.data, r.extra_ids)
                if k[0] in strong
            ),
            *identity.lock_names(("anonymous_id", a) for a in anonymous_ids),
        ],
    )
    for _, (src, inputs) in sorted(by_source.items()):
        _merge_aliased_users(session, src, [m for s, _, m in fresh if s is src], settings)
        batch = upsert_records(session, src, inputs, settings, partial=True)
        # A person who identifies for the first time and links to no one by identifiers
        # is compared at once with the customers their blocking keys find (issue 4).
        realtime.match_new(session, batch.born, settings)
    anonymous = identity.anonymous_profiles(session, anonymous_ids)
    user_customers = _user_customers(session, fresh)
    result = []
    for src, _, msg in fresh:
        key = record_key(msg)
        result.append(
            user_customers[(src.id, key)] if key else anonymous[msg.anonymousId]  # type: ignore[attr-defined]
        )
    return result


def _known_users(session: Session, fresh: list[tuple[Source, str, object]]) -> set[tuple[int, str]]:
    """Which alias previousIds are user ids of their source already."""
    wanted = [(src.id, m.previousId) for src, _, m in fresh if isinstance(m, Alias)]
    found: set[tuple[int, str]] = set()
    for sid, previous in wanted:
        hit = session.scalar(
            select(SourceRecord.id).where(
                SourceRecord.source_id == sid, SourceRecord.source_key == previous
            )
        )
        if hit is not None:
            found.add((sid, previous))
    return found


def _user_customers(
    session: Session, fresh: list[tuple[Source, str, object]]
) -> dict[tuple[int, str], int]:
    keys: dict[int, set[str]] = defaultdict(set)
    for src, _, msg in fresh:
        key = record_key(msg)
        if key:
            keys[src.id].add(key)
    found: dict[tuple[int, str], int] = {}
    for sid, users in keys.items():
        ordered = sorted(users)
        for i in range(0, len(ordered), CHUNK):
            rows = session.execute(
                select(SourceRecord.source_key, SourceRecord.customer_id).where(
                    SourceRecord.source_id == sid,
                    SourceRecord.source_key.in_(ordered[i : i + CHUNK]),
                )
            )
            found.update(((sid, key), cid) for key, cid in rows)
    return found


def _merge_aliased_users(
    session: Session, source: Source, messages: list[object], settings: Settings
) -> None:
    """``alias`` from one user id to another: the two users' customers become one."""
    for msg in messages:
        if not isinstance(msg, Alias):
            continue
        previous = session.scalar(
            select(SourceRecord.customer_id).where(
                SourceRecord.source_id == source.id, SourceRecord.source_key == msg.previousId
            )
        )
        current = session.scalar(
            select(SourceRecord.customer_id).where(
                SourceRecord.source_id == source.id, SourceRecord.source_key == msg.userId
            )
        )
        if previous and current and previous != current:
            survivor, merged = sorted((previous, current))
            identity.merge_customers(
                session, survivor, merged, f"alias {msg.previousId} -> {msg.userId}", settings
            )


def _store(
    session: Session, fresh: list[tuple[Source, str, object]], customers: list[int]
) -> list[dict]:
    if not fresh:
        return []
    now = utcnow()
    rows = []
    for (src, mid, msg), cid in zip(fresh, customers, strict=True):
        name = getattr(msg, "event", None) or getattr(msg, "name", None)
        properties = getattr(msg, "properties", None) or getattr(msg, "traits", None) or {}
        if isinstance(msg, Alias):
            properties = {"previousId": msg.previousId}
        rows.append(
            {
                "source_id": src.id,
                "message_id": mid,
                "customer_id": cid,
                "origin_customer_id": cid,
                "type": msg.type,  # type: ignore[attr-defined]
                "name": name,
                "user_id": getattr(msg, "userId", None),
                "anonymous_id": getattr(msg, "anonymousId", None),
                "properties": properties,
                "context": getattr(msg, "context", {}) or {},
                "occurred_at": getattr(msg, "timestamp", None) or now,
                "received_at": now,
                "profiling": allows_profiling(getattr(msg, "context", {}) or {}, src.channel),
            }
        )
    t = Event.__table__
    ids = allocate_ids(session, t, len(rows))
    columns = ["id", *rows[0]]
    bulk_insert(session, t, columns, [(i, *r.values()) for i, r in zip(ids, rows, strict=True)])
    _holdings(session, fresh, rows, ids)
    return [{**r, "id": i} for i, r in zip(ids, rows, strict=True)]


def _holdings(
    session: Session, fresh: list[tuple[Source, str, object]], rows: list[dict], ids: list[int]
) -> None:
    inserts, endings = [], []
    for (src, _, msg), row, event_id in zip(fresh, rows, ids, strict=True):
        if not isinstance(msg, Track) or msg.event not in HOLDING_EVENTS:
            continue
        for spec in holdings_from(msg.event, msg.properties):
            if spec.status == "ended":
                endings.append((src.id, spec.reference, spec.ended_at or row["occurred_at"]))
                continue
            inserts.append(
                {
                    "customer_id": row["customer_id"],
                    "origin_customer_id": row["customer_id"],
                    "source_id": src.id,
                    "event_id": event_id,
                    "kind": spec.kind,
                    "reference": spec.reference,
                    "line": spec.line,
                    "product_id": spec.product_id,
                    "product_name": spec.product_name,
                    "category": spec.category,
                    "quantity": spec.quantity,
                    "amount": spec.amount,
                    "currency": spec.currency,
                    "status": spec.status,
                    "started_at": spec.started_at or row["occurred_at"],
                    "ended_at": spec.ended_at,
                }
            )
    if inserts:
        # The same order delivered again under a new messageId is still one order.
        session.execute(insert_ignoring_duplicates(session, Holding.__table__), inserts)
    for source_id, reference, ended_at in endings:
        session.execute(
            update(Holding)
            .where(
                Holding.source_id == source_id,
                Holding.kind == "contract",
                Holding.reference == reference,
            )
            .values(status="ended", ended_at=ended_at)
        )
