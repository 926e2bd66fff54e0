"""Identity: who owns which identifier, merging customers and undoing merges."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from relata import customer_changes
from relata.config import Settings
from relata.db import (
    UTCDateTime,
    allocate_ids,
    bulk_insert,
    customer_owned_tables,
    insert_ignoring_duplicates,
    lock_keys,
    utcnow,
)
from relata.events.models import Event
from relata.events.timeline import record_system_event, record_system_events
from relata.identity.linking import Key, LinkItem, Person, Plan, Ref, plan_links
from relata.identity.matching.models import MatchRejection
from relata.identity.models import Identifier, Merge
from relata.ingest.models import SourceRecord
from relata.profiles import service as profiles
from relata.profiles.models import Customer, Holding
from relata.profiles.survivorship import Golden
from relata.segments import membership

CHUNK = 500
IDENTIFIER_FIELDS = ("email", "phone", "customer_number", "loyalty_card")


class MergeError(ValueError):
    """A merge or unmerge that cannot be done, with the reason."""


class MergeNotFound(MergeError):
    pass


class StaleCustomers(RuntimeError):
    """A customer read a moment ago was merged away by a concurrent writer: read again."""


def _lock_active(session: Session, ids: set[int]) -> None:
    """Row-lock the customers a batch will write to, and insist they are still active.

    Identifier locks keep two writers off the same identifier; they do not stop another
    batch merging away a customer this one is about to attach a record to.
    """
    if not ids or session.get_bind().dialect.name != "postgresql":
        return
    ordered = sorted(ids)
    for i in range(0, len(ordered), CHUNK):
        rows = session.execute(
            select(Customer.id, Customer.status)
            .where(Customer.id.in_(ordered[i : i + CHUNK]))
            .order_by(Customer.id)
            .with_for_update()
        )
        if any(status != "active" for _, status in rows):
            raise StaleCustomers


def record_identifiers(
    data: Mapping[str, Any], extra_ids: Iterable[Sequence[str]] = ()
) -> list[Key]:
    keys: list[Key] = [(f, data[f]) for f in IDENTIFIER_FIELDS if data.get(f)]
    keys.extend((k, v) for k, v in extra_ids)
    return list(dict.fromkeys(keys))


def lock_names(keys: Iterable[Key]) -> Iterator[str]:
    return (f"id:{kind}:{value}" for kind, value in keys)


def owners_of(session: Session, keys: Iterable[Key]) -> dict[Key, set[int]]:
    by_kind: dict[str, set[str]] = defaultdict(set)
    for kind, value in keys:
        by_kind[kind].add(value)
    owners: dict[Key, set[int]] = defaultdict(set)
    for kind, values in by_kind.items():
        ordered = sorted(values)
        for i in range(0, len(ordered), CHUNK):
            rows = session.execute(
                select(Identifier.value, Identifier.customer_id)
                .where(Identifier.kind == kind, Identifier.value.in_(ordered[i : i + CHUNK]))
                .distinct()
            )
            for value, cid in rows:
                owners[(kind, value)].add(cid)
    return owners


def _persons(session: Session, ids: Iterable[int]) -> tuple[dict[int, Person], dict[int, bool]]:
    persons: dict[int, Person] = {}
    known: dict[int, bool] = {}
    ordered = sorted(set(ids))
    for i in range(0, len(ordered), CHUNK):
        rows = session.execute(
            select(
                Customer.id,
                Customer.first_name,
                Customer.last_name,
                Customer.birth_date,
                Customer.email,
                Customer.customer_number,
            ).where(Customer.id.in_(ordered[i : i + CHUNK]))
        )
        for cid, first, last, birth, email, number in rows:
            persons[cid] = Person(first, last, birth.isoformat() if birth else None)
            known[cid] = bool(first or last or email or number)
    return persons, known


def plan(session: Session, items: list[LinkItem], settings: Settings) -> Plan:
    """Which customer each item joins; reads owners of the items' strong identifiers."""
    strong = set(settings.strong_identifiers)
    keys = {k for item in items for k in item.identifiers if k[0] in strong}
    owners = owners_of(session, keys) if keys else {}
    involved = {cid for refs in owners.values() for cid in refs}
    involved.update(item.current for item in items if item.current is not None)
    _lock_active(session, involved)
    persons, known = _persons(session, involved)

    def rank(ref: Ref) -> tuple[bool, bool, int]:
        # Existing before new, a known customer before an anonymous profile, then oldest.
        return (ref < 0, not known.get(ref, True), abs(ref))

    return plan_links(items, owners, persons, strong, settings.shared_identifiers, rank)


_IDENTIFIER_COLUMNS = [
    "kind",
    "value",
    "customer_id",
    "origin_customer_id",
    "source_record_id",
    "created_at",
]


def write_identifiers(session: Session, rows: list[tuple[Any, ...]]) -> None:
    """Rows of (kind, value, customer_id, origin_customer_id, source_record_id, created_at)."""
    bulk_insert(session, Identifier.__table__, _IDENTIFIER_COLUMNS, rows)


def anonymous_profiles(session: Session, anonymous_ids: Iterable[str]) -> dict[str, int]:
    """The customer of every anonymous id, creating an empty profile for a new one."""
    wanted = sorted(set(anonymous_ids))
    lock_keys(session, lock_names(("anonymous_id", a) for a in wanted))
    owners = owners_of(session, [("anonymous_id", a) for a in wanted])
    found = {a: min(owners[("anonymous_id", a)]) for a in wanted if owners.get(("anonymous_id", a))}
    for cid, aid in zip(
        profiles.create_customers(session, [Golden() for a in wanted if a not in found]),
        [a for a in wanted if a not in found],
        strict=True,
    ):
        found[aid] = cid
        write_identifiers(session, [("anonymous_id", aid, cid, cid, None, utcnow())])
    roots = resolve_ids(session, found.values())
    return {a: roots[cid] for a, cid in found.items()}


def resolve_ids(session: Session, customer_ids: Iterable[int]) -> dict[int, int]:
    """The active customer each id is or was merged into, a few queries for any number."""
    root = {cid: cid for cid in customer_ids}
    pending = set(root)
    for _ in range(64):  # merge chains are short; a cycle would be a bug
        if not pending:
            return root
        ordered = sorted(pending)
        parent: dict[int, int] = {}
        for i in range(0, len(ordered), CHUNK):
            parent.update(
                session.execute(
                    select(Customer.id, Customer.merged_into_id).where(
                        Customer.id.in_(ordered[i : i + CHUNK]),
                        Customer.merged_into_id.is_not(None),
                    )
                ).all()
            )
        moved = {cid: parent[target] for cid, target in root.items() if target in parent}
        root.update(moved)
        pending = set(moved.values())
    raise RuntimeError("merge chain too long or cyclic")


def resolve_id(session: Session, customer_id: int) -> int:
    customer = profiles.resolve(session, customer_id)
    return customer.id if customer is not None else customer_id


def _snapshot(session: Session, customer_id: int) -> dict[str, Any]:
    c = session.get(Customer, customer_id)
    if c is None:
        return {}
    values = {
        col: getattr(c, col)
        for col in ("first_name", "last_name", "email", "customer_number", "city", "postcode")
    }
    values["birth_date"] = c.birth_date.isoformat() if c.birth_date else None
    return {"id": c.id, **values}


def merge(session: Session, survivor_id: int, merged_id: int, reason: str) -> int:
    """Fold ``merged_id`` into ``survivor_id``: everything it owns moves; logged."""
    if survivor_id == merged_id:
        raise MergeError(f"customer {survivor_id} cannot be merged into itself")
    for cid in (survivor_id, merged_id):
        customer = session.get(Customer, cid)
        if customer is None or customer.status != "active":
            raise MergeError(f"customer {cid} is not an active customer")
    log = Merge(
        survivor_id=survivor_id,
        merged_id=merged_id,
        reason=reason[:500],
        before={
            "survivor": _snapshot(session, survivor_id),
            "merged": _snapshot(session, merged_id),
        },
    )
    session.add(log)
    for table in customer_owned_tables():
        session.execute(
            update(table).where(table.c.customer_id == merged_id).values(customer_id=survivor_id)
        )
    session.execute(
        update(Customer)
        .where(Customer.id == merged_id)
        .values(status="merged", merged_into_id=survivor_id, updated_at=utcnow())
    )
    customer_changes.changed(session, [survivor_id, merged_id])
    session.flush()
    record_system_event(
        session,
        survivor_id,
        "Customer Merged",
        f"merge:{log.id}",
        {"merge_id": log.id, "merged_id": merged_id, "reason": log.reason},
    )
    return log.id


def merge_customers(
    session: Session, survivor_id: int, merged_id: int, reason: str, settings: Settings
) -> int:
    """A merge decided by a person: merged at once and golden record recomputed."""
    merge_id = merge(session, survivor_id, merged_id, reason)
    profiles.refresh(session, [survivor_id], settings.survivorship)
    membership.reevaluate(session, [survivor_id, merged_id])  # live segments
    return merge_id


_SNAPSHOT_FIELDS = ("first_name", "last_name", "email", "customer_number", "city", "postcode")


def _snapshots(session: Session, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    ordered = sorted(set(ids))
    columns = [getattr(Customer, f) for f in _SNAPSHOT_FIELDS]
    for i in range(0, len(ordered), CHUNK):
        rows = session.execute(
            select(Customer.id, Customer.status, Customer.birth_date, *columns).where(
                Customer.id.in_(ordered[i : i + CHUNK])
            )
        )
        for cid, status, birth, *values in rows:
            snapshot = {"id": cid, **dict(zip(_SNAPSHOT_FIELDS, values, strict=True))}
            snapshot["birth_date"] = birth.isoformat() if birth else None
            snapshot["_status"] = status
            found[cid] = snapshot
    return found


def merge_many(
    session: Session, merges: Sequence[tuple[int, int, str]], settings: Settings
) -> list[int]:
    """Many merges (survivor, merged, reason) at once, each logged as `merge` logs one.

    Set-based: one UPDATE a customer-owned table for all pairs instead of one a pair,
    so a batch run can merge hundreds of thousands of customers. A survivor must not be
    merged away in the same call, and no customer merged twice. Golden records are
    recomputed at the end. Returns the merge log ids, in the order given.
    """
    if not merges:
        return []
    session.flush()  # ids are allocated below: pending ORM rows must be in the table first
    merged_ids = [m for _, m, _ in merges]
    survivors = {s for s, _, _ in merges}
    if len(set(merged_ids)) != len(merged_ids) or survivors & set(merged_ids):
        raise MergeError("a customer is merged twice, or merged and kept, in one batch")
    if any(s == m for s, m, _ in merges):
        raise MergeError("a customer cannot be merged into itself")
    snapshots = _snapshots(session, [*survivors, *merged_ids])
    for cid in (*survivors, *merged_ids):
        if snapshots.get(cid, {}).get("_status") != "active":
            raise MergeError(f"customer {cid} is not an active customer")
    now = utcnow()
    log_ids = allocate_ids(session, Merge.__table__, len(merges))
    rows = []
    for log_id, (survivor, merged, reason) in zip(log_ids, merges, strict=True):
        before = {
            "survivor": {k: v for k, v in snapshots[survivor].items() if k != "_status"},
            "merged": {k: v for k, v in snapshots[merged].items() if k != "_status"},
        }
        rows.append((log_id, survivor, merged, reason[:500], before, now))
    columns = ["id", "survivor_id", "merged_id", "reason", "before", "created_at"]
    bulk_insert(session, Merge.__table__, columns, rows)
    _move_customers(session, [(s, m) for s, m, _ in merges], now)
    customer_changes.changed(session, [*survivors, *merged_ids])
    record_system_events(
        session,
        [
            (
                survivor,
                "Customer Merged",
                f"merge:{log_id}",
                {"merge_id": log_id, "merged_id": merged, "reason": reason[:500]},
            )
            for log_id, (survivor, merged, reason) in zip(log_ids, merges, strict=True)
        ],
    )
    profiles.refresh(session, survivors, settings.survivorship)
    membership.reevaluate(session, [*survivors, *merged_ids])  # live segments
    return log_ids


def _move_customers(session: Session, pairs: Sequence[tuple[int, int]], now: datetime) -> None:
    """Every customer-owned row of each merged customer to its survivor; mark it merged."""
    conn = session.connection()
    conn.execute(
        text("CREATE TEMPORARY TABLE merge_map (merged BIGINT PRIMARY KEY, survivor BIGINT)")
    )
    try:
        conn.execute(
            text("INSERT INTO merge_map (merged, survivor) VALUES (:m, :s)"),
            [{"m": m, "s": s} for s, m in pairs],
        )
        for table in customer_owned_tables():
            conn.execute(
                text(
                    f"UPDATE {table.name} SET customer_id = merge_map.survivor "
                    f"FROM merge_map WHERE {table.name}.customer_id = merge_map.merged"
                )
            )
        conn.execute(
            text(
                "UPDATE customers SET status = 'merged', merged_into_id = merge_map.survivor,"
                " updated_at = :now FROM merge_map"
                " WHERE customers.id = merge_map.merged"
            ),
            {"now": UTCDateTime().process_bind_param(now, conn.dialect)},
        )
    finally:
        conn.execute(text("DROP TABLE merge_map"))


def subtree(session: Session, root: int) -> set[int]:
    """``root`` and every customer merged into it, directly or through others."""
    members, frontier = {root}, {root}
    while frontier:
        frontier = (
            set(session.scalars(select(Customer.id).where(Customer.merged_into_id.in_(frontier))))
            - members
        )
        members |= frontier
    return members


@dataclass(frozen=True)
class Unmerged:
    merge_id: int
    restored_id: int
    survivor_id: int


def unmerge(session: Session, merge_id: int, settings: Settings) -> Unmerged:
    """Restore the merged customer as it was: its records, identifiers and events."""
    log = session.get(Merge, merge_id)
    if log is None:
        raise MergeNotFound(f"no merge with id {merge_id}")
    if log.undone_at is not None:
        raise MergeError(f"merge {merge_id} was already undone at {log.undone_at.isoformat()}")
    restored = session.get(Customer, log.merged_id)
    if restored is None or restored.merged_into_id != log.survivor_id:
        raise MergeError(f"customer {log.merged_id} is no longer merged into {log.survivor_id}")
    holder = resolve_id(session, log.survivor_id)
    members = sorted(subtree(session, log.merged_id))
    for table in customer_owned_tables():
        for i in range(0, len(members), CHUNK):
            session.execute(
                update(table)
                .where(
                    table.c.customer_id == holder,
                    table.c.origin_customer_id.in_(members[i : i + CHUNK]),
                )
                .values(customer_id=log.merged_id)
            )
    restored.status, restored.merged_into_id = "active", None
    customer_changes.changed(session, [holder, *members])
    session.flush()
    _reassign_arrivals(session, log, holder, settings)
    # A person separated them: matching must not merge them again (deterministic links
    # do not ask; see architecture.md, "Unmerge is not sticky").
    a, b = sorted((log.survivor_id, log.merged_id))
    session.execute(
        insert_ignoring_duplicates(session, MatchRejection.__table__).values(
            customer_a_id=a, customer_b_id=b, reason=f"unmerge {merge_id}", created_at=utcnow()
        )
    )
    log.undone_at = utcnow()
    session.flush()
    profiles.refresh(session, [holder, log.merged_id], settings.survivorship)
    for cid in (holder, log.merged_id):
        record_system_event(
            session,
            cid,
            "Customer Unmerged",
            f"unmerge:{merge_id}:{cid}",
            {"merge_id": merge_id, "restored_id": log.merged_id, "survivor_id": holder},
        )
    membership.reevaluate(session, [holder, log.merged_id])  # live segments
    return Unmerged(merge_id, log.merged_id, holder)


def _reassign_arrivals(session: Session, log: Merge, holder: int, settings: Settings) -> None:
    """What arrived at the holder after the merge goes to the restored customer when its
    identifiers say it is the restored customer's: a record whose strong identifiers the
    restored customer owns and the holder does not (with its identifiers), then events of
    such records' users or of anonymous ids only the restored customer owns (with their
    holdings). What says nothing either way stays with the holder.
    """
    restored = log.merged_id
    strong = set(settings.strong_identifiers)
    arrived = session.execute(
        select(SourceRecord.id, SourceRecord.source_id, SourceRecord.source_key).where(
            SourceRecord.customer_id == holder, SourceRecord.created_at > log.created_at
        )
    ).all()
    arrived_ids = {rid for rid, _, _ in arrived}
    owned: dict[int, set[Key]] = {holder: set(), restored: set()}
    by_record: dict[int, set[Key]] = defaultdict(set)
    for kind, value, cid, record_id in session.execute(
        select(
            Identifier.kind, Identifier.value, Identifier.customer_id, Identifier.source_record_id
        ).where(Identifier.customer_id.in_([holder, restored]))
    ):
        if kind not in strong:
            continue
        if record_id in arrived_ids:
            by_record[record_id].add((kind, value))
        else:
            owned[cid].add((kind, value))
    moving = [
        rid
        for rid in arrived_ids
        if by_record[rid] & owned[restored] and not by_record[rid] & owned[holder]
    ]
    if moving:
        values = {"customer_id": restored, "origin_customer_id": restored}
        for table in (SourceRecord.__table__, Identifier.__table__):
            column = table.c.id if table is SourceRecord.__table__ else table.c.source_record_id
            for i in range(0, len(moving), CHUNK):
                session.execute(
                    update(table)
                    .where(table.c.customer_id == holder, column.in_(moving[i : i + CHUNK]))
                    .values(values)
                )
    users = {(source, key) for rid, source, key in arrived if rid in set(moving)}
    users |= set(
        session.execute(
            select(SourceRecord.source_id, SourceRecord.source_key).where(
                SourceRecord.customer_id == restored
            )
        ).all()
    )
    anonymous = {v for k, v in owned[restored] if k == "anonymous_id"} - {
        v for k, v in owned[holder] if k == "anonymous_id"
    }
    events = session.execute(
        select(Event.id, Event.source_id, Event.user_id, Event.anonymous_id).where(
            Event.customer_id == holder,
            Event.received_at > log.created_at,
            Event.type != "system",
        )
    ).all()
    moving_events = [
        eid
        for eid, source, user, anon in events
        if (user is not None and (source, user) in users)
        or (user is None and anon is not None and anon in anonymous)
    ]
    values = {"customer_id": restored, "origin_customer_id": restored}
    for i in range(0, len(moving_events), CHUNK):
        chunk = moving_events[i : i + CHUNK]
        session.execute(
            update(Event).where(Event.customer_id == holder, Event.id.in_(chunk)).values(values)
        )
        session.execute(
            update(Holding)
            .where(Holding.customer_id == holder, Holding.event_id.in_(chunk))
            .values(values)
        )


def list_merges(session: Session, customer_id: int | None = None, limit: int = 100) -> list[Merge]:
    stmt = select(Merge).order_by(Merge.id.desc()).limit(limit)
    if customer_id is not None:
        stmt = stmt.where((Merge.survivor_id == customer_id) | (Merge.merged_id == customer_id))
    return list(session.scalars(stmt))


def identifiers_of(session: Session, customer_id: int) -> list[Identifier]:
    return list(
        session.scalars(
            select(Identifier)
            .where(Identifier.customer_id == customer_id)
            .order_by(Identifier.kind, Identifier.value)
        )
    )


def find_by_identifier(session: Session, kind: str, value: str, limit: int = 20) -> list[int]:
    rows = session.scalars(
        select(Identifier.customer_id)
        .where(Identifier.kind == kind, Identifier.value == value)
        .distinct()
        .limit(limit)
    )
    return list(rows)
