"""One person as the GDPR rights see them: a customer with everyone merged into it.

Shared by export (Art. 15) and erasure (Art. 17): which customer ids are the person,
which identifiers are theirs, and which other tables hold rows about them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from relata.consent.errors import CustomerErased, CustomerMerged, CustomerNotFound
from relata.consent.quarantined import Person
from relata.db import Base
from relata.events.models import Event
from relata.identity import service as identity
from relata.identity.models import Identifier
from relata.ingest.models import Source, SourceRecord
from relata.profiles import service as profiles
from relata.profiles.models import Customer

IdentifierKey = tuple[str, str]  # (kind, value); record keys as ("source_key", "source:key")

# Tables the GDPR code handles one by one; every other table that refers to a customer
# is handled generically (see ``other_tables``).
HANDLED = frozenset(
    {
        "customers",
        "source_records",
        "identifiers",
        "events",
        "holdings",
        "merges",
        "consent_entries",
        "consent_tokens",
        "erasure_tombstones",
    }
)


def source_key(source: str, key: str) -> IdentifierKey:
    return ("source_key", f"{source}:{key}")


def root_customer(session: Session, customer_id: int, *, follow: bool) -> Customer:
    """The customer holding the person's data; ``follow`` a merged id to it, or refuse."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise CustomerNotFound(f"no customer with id {customer_id}")
    if customer.merged_into_id is not None:
        root = profiles.resolve(session, customer_id)
        assert root is not None
        if not follow:
            raise CustomerMerged(customer_id, root.id)
        customer = root
    if customer.status == "erased":
        raise CustomerErased(f"customer {customer_id} was erased")
    return customer


def members(session: Session, root: int) -> list[int]:
    """``root`` and every customer merged into it, directly or through others."""
    found, frontier = {root}, {root}
    while frontier:
        frontier = (
            set(session.scalars(select(Customer.id).where(Customer.merged_into_id.in_(frontier))))
            - found
        )
        found |= frontier
    return sorted(found)


@dataclass(frozen=True, slots=True)
class Identity:
    keys: frozenset[IdentifierKey]  # what the tombstones are made of
    quarantine: Person  # what a quarantined row of theirs would contain


def identity_of(session: Session, ids: list[int]) -> Identity:
    """Every identifier and record key of the person, from records, identifiers and events."""
    keys: set[IdentifierKey] = set()
    record_keys: dict[int, set[str]] = defaultdict(set)
    rows = session.execute(
        select(
            Source.id,
            Source.name,
            SourceRecord.source_key,
            SourceRecord.data,
            SourceRecord.extra_ids,
        )
        .join(Source, Source.id == SourceRecord.source_id)
        .where(SourceRecord.customer_id.in_(ids))
    )
    for source_id, name, key, data, extra in rows:
        keys.add(source_key(name, key))
        keys.update(identity.record_identifiers(data, [tuple(k) for k in extra]))
        record_keys[source_id].add(key)
    keys.update(
        session.execute(
            select(Identifier.kind, Identifier.value)
            .where(Identifier.customer_id.in_(ids))
            .distinct()
        ).all()
    )
    events = session.execute(
        select(Source.id, Source.name, Event.user_id, Event.anonymous_id)
        .join(Source, Source.id == Event.source_id)
        .where(Event.customer_id.in_(ids))
        .distinct()
    )
    for source_id, name, user, anonymous in events:
        if user:  # an event's user id is its source's record key
            keys.add(source_key(name, user))
            record_keys[source_id].add(user)
        if anonymous:
            keys.add(("anonymous_id", anonymous))
    values = frozenset(v for kind, v in keys if kind != "source_key")
    return Identity(
        frozenset(keys),
        Person(values, {sid: frozenset(k) for sid, k in record_keys.items()}),
    )


# Kept on erasure though they name a customer: only the id, append-only by design.
KEPT = frozenset({"audit_log"})  # auth/models.py: who read or changed whose data


def kept_on_erasure(table: Table) -> bool:
    return table.name in KEPT or table.info.get("erasure") == "keep"


def _refers_to_customers(table: Table) -> list[str]:
    columns = []
    for column in table.c:
        to_customers = any(fk.column.table.name == "customers" for fk in column.foreign_keys)
        if to_customers or column.name == "customer_id":
            columns.append(column.name)
    return columns


def other_tables() -> list[tuple[Table, list[str]]]:
    """Tables of other domains with rows about a customer (decisions, messages, …).

    Dependents first, so deleting in this order never trips a foreign key. A table whose
    rows hold nothing personal beyond an id can opt out of erasure with
    ``__table_args__ = {"info": {"erasure": "keep"}}``.
    """
    found = []
    for table in reversed(Base.metadata.sorted_tables):
        if table.name in HANDLED:
            continue
        if columns := _refers_to_customers(table):
            found.append((table, columns))
    return found


def rows_about(
    session: Session, table: Table, columns: Iterable[str], ids: list[int]
) -> list[dict[str, object]]:
    condition = None
    for name in columns:
        clause = table.c[name].in_(ids)
        condition = clause if condition is None else condition | clause
    return [dict(r._mapping) for r in session.execute(select(table).where(condition))]
