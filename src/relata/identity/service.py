"""Identity: who owns which identifier, merging customers and undoing merges."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from relata.config import Settings
from relata.db import bulk_insert, customer_owned_tables, lock_keys, utcnow
from relata.events.timeline import record_system_event
from relata.identity.linking import Key, LinkItem, Person, Plan, Ref, plan_links
from relata.identity.models import Identifier, Merge
from relata.profiles import service as profiles
from relata.profiles.models import Customer
from relata.profiles.survivorship import Golden

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
    return merge_id


def _subtree(session: Session, root: int) -> set[int]:
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
    members = sorted(_subtree(session, log.merged_id))
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
    return Unmerged(merge_id, log.merged_id, holder)


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
