"""The golden record: create customers, recompute them from their records, find them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session

from relata.db import allocate_ids, bulk_insert, utcnow
from relata.ingest.models import Source, SourceRecord
from relata.ingest.normalise import fold
from relata.profiles.models import Customer
from relata.profiles.survivorship import GOLDEN_FIELDS, Candidate, Golden, golden, pack

CHUNK = 500


def customer_values(g: Golden) -> dict[str, Any]:
    """The columns of ``customers`` that a golden record sets."""
    values: dict[str, Any] = dict.fromkeys(GOLDEN_FIELDS)
    values.update(g.values)
    if values["birth_date"]:
        values["birth_date"] = date.fromisoformat(values["birth_date"])
    values["provenance"] = pack(g.provenance)
    first, last = values["first_name"], values["last_name"]
    values["first_name_key"] = (fold(first) or None) if first else None
    values["last_name_key"] = (fold(last) or None) if last else None
    return values


_INSERT_COLUMNS = [
    "id",
    "status",
    *GOLDEN_FIELDS,
    "provenance",
    "first_name_key",
    "last_name_key",
    "created_at",
    "updated_at",
]


def create_customers(session: Session, goldens: Sequence[Golden]) -> list[int]:
    """New active customers, born with their golden records; returns their ids."""
    table = Customer.__table__
    ids = allocate_ids(session, table, len(goldens))
    now = utcnow()
    rows = []
    for cid, g in zip(ids, goldens, strict=True):
        values = customer_values(g)
        rows.append((cid, "active", *(values[f] for f in _INSERT_COLUMNS[2:-2]), now, now))
    bulk_insert(session, table, _INSERT_COLUMNS, rows)
    return ids


def candidates_of(session: Session, customer_ids: Iterable[int]) -> dict[int, list[Candidate]]:
    """Every customer's source records, as survivorship candidates."""
    found: dict[int, list[Candidate]] = defaultdict(list)
    ids = sorted(set(customer_ids))
    for i in range(0, len(ids), CHUNK):
        rows = session.execute(
            select(
                SourceRecord.customer_id,
                Source.name,
                Source.trust,
                SourceRecord.source_key,
                SourceRecord.updated_at,
                SourceRecord.data,
            )
            .join(Source, Source.id == SourceRecord.source_id)
            .where(SourceRecord.customer_id.in_(ids[i : i + CHUNK]))
        )
        for cid, name, trust, key, at, data in rows:
            found[cid].append(Candidate(name, key, trust, at, data))
    return found


def refresh(session: Session, customer_ids: Iterable[int], rules: Mapping[str, str]) -> None:
    """Recompute the golden record of each customer from its source records."""
    ids = sorted(set(customer_ids))
    if not ids:
        return
    found = candidates_of(session, ids)
    now = utcnow()
    rows = []
    for cid in ids:
        values = customer_values(golden(found.get(cid, []), rules))
        rows.append({"_id": cid, **values, "updated_at": now})
    stmt = (
        update(Customer.__table__)
        .where(Customer.__table__.c.id == bindparam("_id"))
        .values({k: bindparam(k) for k in rows[0] if k != "_id"})
    )
    session.connection().execute(stmt, rows)


def resolve(session: Session, customer_id: int) -> Customer | None:
    """The active customer that ``customer_id`` is or was merged into."""
    seen = set()
    customer = session.get(Customer, customer_id)
    while customer is not None and customer.merged_into_id is not None:
        if customer.id in seen:  # a cycle would be a bug; never loop forever on it
            raise RuntimeError(f"merge cycle at customer {customer.id}")
        seen.add(customer.id)
        customer = session.get(Customer, customer.merged_into_id)
    return customer


def name_matches(session: Session, tokens: Sequence[str], limit: int) -> list[int]:
    """Customers whose first or last name starts with every token (index range scans)."""
    stmt = select(Customer.id).where(Customer.status == "active")
    for token in tokens:
        upper = token + "\U0010ffff"
        stmt = stmt.where(
            or_(
                Customer.last_name_key.between(token, upper),
                Customer.first_name_key.between(token, upper),
            )
        )
    return list(session.scalars(stmt.order_by(Customer.id).limit(limit)))


def get_many(session: Session, ids: Sequence[int]) -> list[Customer]:
    if not ids:
        return []
    by_id = {c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(ids)))}
    return [by_id[i] for i in ids if i in by_id]


def age(birth: date | None, today: date | None = None) -> int | None:
    if birth is None:
        return None
    today = today or date.today()
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
