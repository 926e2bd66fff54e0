"""Responses to decisions: through the API, as tracked events, and what they teach.

Each response is stored once (unique decision, offer, kind); it adds a "show" outcome if the
offer had none and, if positive (click, accept, convert), one "win": so an offer shown
counts once and is won at most once, whatever arrives how often. Services take a session
and flush; the caller owns the transaction.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from psycopg.types.json import set_json_loads
from sqlalchemy import select
from sqlalchemy.orm import Session

from relata import customer_changes
from relata.config import Settings
from relata.db import defer_insert, insert_new_sqlite, on_commit, utcnow
from relata.decisions import timeline
from relata.decisions.engine import existing
from relata.decisions.features import POSITIVE, ResponseRow
from relata.decisions.models import Decision, DecisionOutcome, DecisionResponse
from relata.decisions.schemas import ResponseItem, ResponsesRead
from relata.events.purchases import HOLDING_EVENTS

# Track events that are responses, through the event API or written by relata itself.
RESPONSE_EVENTS = {
    "Offer Viewed": "impression",
    "Offer Clicked": "click",
    "Offer Accepted": "accept",
    "Offer Rejected": "reject",
    "Offer Converted": "convert",
}
EVENT_OF = {kind: name for name, kind in RESPONSE_EVENTS.items()}
CHUNK = 500
BIG_CHUNK = 5_000  # ids a PostgreSQL array parameter: one statement a batch of responses
_DECISIONS_PG = (
    "SELECT id, customer_id, channel, offers, labels, control FROM decisions "
    "WHERE id = ANY(%b::uuid[])"
)


class DecisionNotFound(LookupError):
    pass


class ResponseError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Item:
    decision_id: uuid.UUID
    offer: str | int
    kind: str
    value: float | None
    occurred_at: datetime
    via: str  # decision | api | event
    event_id: int | None


@dataclass(frozen=True, slots=True)
class DecisionRef:
    id: uuid.UUID
    customer_id: int
    channel: str
    offers: list[dict[str, Any]]
    labels: list[str]
    control: bool

    def offer(self, ref: str | int) -> dict[str, Any] | None:
        for o in self.offers:
            if o["offer_id"] == ref or o["key"] == ref:
                return o
        if isinstance(ref, str):  # an id sent as text ("17")
            for o in self.offers:
                if ref == str(o["offer_id"]):
                    return o
        return None


def parse_id(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except (ValueError, AttributeError, TypeError):
        return None


def record_responses(
    session: Session, settings: Settings, items: list[ResponseItem], now: datetime | None = None
) -> ResponsesRead:
    """Responses through the API: unknown decision 404, offer not presented in it 422."""
    now = now or utcnow()
    parsed = []
    for n, item in enumerate(items):
        decision_id = parse_id(item.decision_id)
        if decision_id is None:
            raise DecisionNotFound(f"responses.{n}: no decision {item.decision_id[:64]!r}")
        at = item.occurred_at or now
        parsed.append(Item(decision_id, item.offer, item.type, item.value, at, "api", None))
    decisions = _decisions(session, {i.decision_id for i in parsed})
    for n, item in enumerate(parsed):
        found = decisions.get(item.decision_id)
        if found is None:
            raise DecisionNotFound(f"responses.{n}: no decision {item.decision_id}")
        offer = found.offer(item.offer)
        if offer is None or offer["nothing"]:
            raise ResponseError(
                f"responses.{n}: offer {item.offer!r} was not offered in decision "
                f"{item.decision_id}"
            )
    rows, duplicates = write(session, decisions, parsed, now, on_timeline=True)
    _remember_after_commit(session, rows, decisions)
    return ResponsesRead(recorded=len(parsed) - duplicates, duplicates=duplicates)


def responses_from_events(session: Session, events: Iterable[Any]) -> int:
    """Responses that came in as tracked events (``Offer Accepted`` with ``decision_id`` and
    ``offer``): call after the events are stored, in the same transaction. Anything else is
    ignored at the cost of one name lookup; an unknown decision, an offer it did not present,
    or a decision of another customer is skipped (the event itself stays on the timeline).
    Also forgets cached customers whose holdings the events change. Returns responses recorded.
    """
    items, owner, holders = [], {}, set()
    for e in events:
        get = e.get if isinstance(e, Mapping) else lambda k, e=e: getattr(e, k, None)
        name = get("name")
        if name in HOLDING_EVENTS:
            holders.add(get("customer_id"))
        kind = RESPONSE_EVENTS.get(name)
        props = get("properties") or {}
        decision_id = parse_id(props.get("decision_id")) if kind else None
        offer = props.get("offer", props.get("offer_id"))
        if decision_id is None or not isinstance(offer, str | int) or isinstance(offer, bool):
            continue
        value = props.get("value")
        value = (
            float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )
        items.append(Item(decision_id, offer, kind, value, get("occurred_at"), "event", get("id")))
        owner[len(items) - 1] = get("customer_id")
    if holders:
        _invalidate_after_commit(session, holders)
    if not items:
        return 0
    decisions = _decisions(session, {i.decision_id for i in items})
    kept = []
    for n, item in enumerate(items):
        found = decisions.get(item.decision_id)
        if found is None or found.customer_id != owner[n]:
            continue
        offer = found.offer(item.offer)
        if offer is not None and not offer["nothing"]:
            kept.append(item)
    rows, duplicates = write(session, decisions, kept, utcnow(), on_timeline=False)
    _remember_after_commit(session, rows, decisions)
    return len(kept) - duplicates


def _decisions(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, DecisionRef]:
    found: dict[uuid.UUID, DecisionRef] = {}
    ordered = sorted(ids)
    if session.get_bind().dialect.name == "postgresql":
        # Through the driver, the ids as one binary array: SQLAlchemy expanding and
        # converting an IN of 1,000 UUIDs cost more than PostgreSQL's answer.
        cursor = session.connection().connection.cursor()
        # The logged offers are the bulk of each row: orjson decodes them several times
        # faster than the json module psycopg uses by default.
        set_json_loads(orjson.loads, cursor)
        try:
            for i in range(0, len(ordered), BIG_CHUNK):
                cursor.execute(_DECISIONS_PG, [ordered[i : i + BIG_CHUNK]])
                for row in cursor.fetchall():
                    found[row[0]] = DecisionRef(*row)
        finally:
            cursor.close()
        return found
    d = Decision
    for i in range(0, len(ordered), CHUNK):
        rows = session.execute(
            select(d.id, d.customer_id, d.channel, d.offers, d.labels, d.control).where(
                d.id.in_(ordered[i : i + CHUNK])
            )
        )
        for row in rows:
            found[row[0]] = DecisionRef(*row)
    return found


def write(
    session: Session,
    decisions: Mapping[uuid.UUID, DecisionRef],
    items: list[Item],
    now: datetime,
    on_timeline: bool,
) -> tuple[list[ResponseRow], int]:
    """Store responses once each; their outcomes (a show each, a win for a positive one);
    and, for responses relata was told about directly, an event on the timeline."""
    if not items:
        return [], 0
    responses, seen = [], set()
    for item in items:
        d = decisions[item.decision_id]
        offer = d.offer(item.offer)
        assert offer is not None
        key = (item.decision_id, offer["offer_id"], item.kind)
        if key in seen:
            continue
        seen.add(key)
        responses.append((item, d, offer))
    inserted = _insert_new(
        session,
        DecisionResponse.__table__,
        RESPONSE_COLUMNS,
        [
            (
                item.decision_id,
                offer["offer_id"],
                d.customer_id,
                d.customer_id,
                d.channel,
                item.kind,
                item.value,
                item.via,
                item.event_id,
                item.occurred_at,
                now,
            )
            for item, d, offer in responses
        ],
        returning=("decision_id", "offer_id", "kind"),
    )
    fresh = [r for r in responses if (r[0].decision_id, r[2]["offer_id"], r[0].kind) in inserted]
    _outcomes(session, fresh)
    text_of = {d.id: str(d.id) for _, d, _ in fresh}  # UUID.__str__ is not free
    if on_timeline:
        timeline.add(
            session,
            [
                (
                    d.customer_id,
                    EVENT_OF[item.kind],
                    f"response:{text_of[d.id]}:{offer['offer_id']}:{item.kind}",
                    {"decision_id": text_of[d.id], "offer": offer["key"]},
                )
                for item, d, offer in fresh
            ],
        )
    rows = [
        ResponseRow(
            text_of[d.id],
            offer["offer_id"],
            offer["category"],
            d.channel,
            item.kind,
            item.occurred_at,
        )
        for item, d, offer in fresh
    ]
    return rows, len(items) - len(fresh)


def impressions(
    session: Session,
    decision_id: uuid.UUID,
    customer_id: int,
    channel: str,
    outcome: Any,
    shows: list[dict[str, Any]],
    now: datetime,
) -> None:
    """The impressions and shows of a decision just made, straight through the driver
    (with the rest of a group commit: a new decision has no responses to clash with)."""
    if not shows:
        return
    defer_insert(
        session,
        DecisionResponse.__table__,
        [
            "decision_id",
            "offer_id",
            "customer_id",
            "origin_customer_id",
            "channel",
            "kind",
            "via",
            "occurred_at",
            "received_at",
        ],
        [
            (
                decision_id,
                o["offer_id"],
                customer_id,
                customer_id,
                channel,
                "impression",
                "decision",
                now,
                now,
            )
            for o in shows
        ],
    )
    defer_insert(
        session,
        DecisionOutcome.__table__,
        [
            "decision_id",
            "offer_id",
            "kind",
            "channel",
            "control",
            "labels",
            "cost",
            "occurred_at",
            "folded",
        ],
        [
            (
                decision_id,
                o["offer_id"],
                "show",
                channel,
                outcome.control,
                outcome.labels,
                0.0,
                now,
                False,
            )
            for o in shows
        ],
    )


def _outcomes(session: Session, fresh: list[tuple[Item, DecisionRef, dict[str, Any]]]) -> None:
    rows = []
    for item, d, offer in fresh:
        if offer.get("shown"):  # the decision logged its show already
            kinds = ["win"] if item.kind in POSITIVE else []
        else:
            kinds = ["show", "win"] if item.kind in POSITIVE else ["show"]
        for kind in kinds:
            cost = float(offer.get("cost") or 0.0) if kind == "win" else 0.0
            rows.append(
                (
                    item.decision_id,
                    offer["offer_id"],
                    kind,
                    d.channel,
                    d.control,
                    d.labels,
                    cost,
                    item.occurred_at,
                    False,
                )
            )
    _insert_new(session, DecisionOutcome.__table__, OUTCOME_COLUMNS, rows)


RESPONSE_COLUMNS = {
    "decision_id": "uuid",
    "offer_id": "bigint",
    "customer_id": "bigint",
    "origin_customer_id": "bigint",
    "channel": "text",
    "kind": "text",
    "value": "float8",
    "via": "text",
    "event_id": "bigint",
    "occurred_at": "timestamptz",
    "received_at": "timestamptz",
}
OUTCOME_COLUMNS = {
    "decision_id": "uuid",
    "offer_id": "bigint",
    "kind": "text",
    "channel": "text",
    "control": "boolean",
    "labels": "jsonb",
    "cost": "float8",
    "occurred_at": "timestamptz",
    "folded": "boolean",
}


def _insert_new(
    session: Session,
    table: Any,
    columns: Mapping[str, str],
    rows: list[tuple[Any, ...]],
    returning: tuple[str, ...] = (),
) -> set[tuple[Any, ...]]:
    """Insert rows whose unique key is not stored yet; the ``returning`` columns of those.

    On PostgreSQL one statement over arrays (``unnest``), a parameter a column: a
    multi-row VALUES costs psycopg most of a batch in parsing its thousands of
    placeholders, and executemany a round of the pipeline per row (profiled at 1,900/s).
    """
    if not rows:
        return set()
    if session.get_bind().dialect.name != "postgresql":
        return insert_new_sqlite(session, table, list(columns), rows, returning)
    names = list(columns)
    arrays = [list(col) for col in zip(*rows, strict=True)]
    casts = []
    for i, pg_type in enumerate(columns.values()):
        if pg_type == "jsonb":
            # A list of lists would go as a 2-D array, not as JSON: send text, cast each.
            arrays[i] = _dumped(arrays[i])
            casts.append(f"c{i}::jsonb")
        else:
            casts.append(f"c{i}")
    types = ", ".join(f"%b::{t if t != 'jsonb' else 'text'}[]" for t in columns.values())
    sql = (
        f"INSERT INTO {table.name} ({', '.join(names)}) "
        f"SELECT {', '.join(casts)} FROM unnest({types}) "
        f"AS t({', '.join(f'c{i}' for i in range(len(names)))}) ON CONFLICT DO NOTHING"
    )
    if returning:
        sql += f" RETURNING {', '.join(returning)}"
    cursor = session.connection().connection.cursor()
    try:
        cursor.execute(sql, arrays)
        return {tuple(r) for r in cursor.fetchall()} if returning else set()
    finally:
        cursor.close()


def _dumped(values: list[Any]) -> list[str | None]:
    """Each value as JSON text; the rows of one decision share its value (the same object
    while the batch lives), so it is dumped once."""
    seen: dict[int, str] = {}
    out: list[str | None] = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        text = seen.get(id(v))
        if text is None:
            text = seen[id(v)] = json.dumps(v)
        out.append(text)
    return out


def _remember_after_commit(
    session: Session, rows: list[ResponseRow], decisions: Mapping[uuid.UUID, DecisionRef]
) -> None:
    engine = existing(session)
    if engine is None or not rows:
        return
    by_customer: dict[int, list[ResponseRow]] = defaultdict(list)
    for row in rows:
        by_customer[decisions[uuid.UUID(row.decision_id)].customer_id].append(row)

    def applied() -> None:
        for customer_id, found in by_customer.items():
            engine.remember(customer_id, found)

    on_commit(session, applied)


def _invalidate_after_commit(session: Session, customer_ids: set[int]) -> None:
    # Every process, not only this one: a contract signed through the shop's feed must
    # not be offered a second later by a worker that answers the hotline.
    customer_changes.changed(session, customer_ids)
