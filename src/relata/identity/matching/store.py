"""What matching reads from and writes to the database: rows to compare, models, rejected
pairs and blocking keys."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from relata.db import bulk_insert, insert_ignoring_duplicates, utcnow
from relata.identity.matching.engine import Trained
from relata.identity.matching.features import Features, features, has_keys, key_hash, keys_of
from relata.identity.matching.models import MatchKey, MatchModel, MatchRejection
from relata.identity.matching.rows import Rows
from relata.identity.matching.scoring import Params
from relata.identity.service import resolve_ids
from relata.ingest.models import SourceRecord
from relata.profiles.models import Customer

CHUNK = 500
PAGE = 20_000
GOLDEN_COLUMNS = (
    "first_name",
    "last_name",
    "birth_date",
    "gender",
    "email",
    "phone",
    "street",
    "house_number",
    "postcode",
    "city",
)
Advance = Callable[[int], None]


class NoModel(LookupError):
    """Matching needs a trained model and there is none yet."""


class UnknownCustomer(LookupError):
    """A customer id that names no customer (or two ids of one customer)."""


def _golden_select() -> Any:
    return select(Customer.id, *(getattr(Customer, c) for c in GOLDEN_COLUMNS))


def _golden(row: Sequence[Any]) -> dict[str, Any]:
    data = dict(zip(GOLDEN_COLUMNS, row[1:], strict=True))
    if data["birth_date"] is not None:
        data["birth_date"] = data["birth_date"].isoformat()
    return data


def count_active(session: Session) -> int:
    return session.scalar(select(func.count()).where(Customer.status == "active")) or 0


def load_rows(session: Session, advance: Advance | None = None) -> Rows:
    """Every active customer's golden record, then the records of those with several."""
    rows = Rows()
    stmt = (
        _golden_select()
        .where(Customer.status == "active")
        .order_by(Customer.id)
        .execution_options(yield_per=PAGE)
    )
    n = 0
    for row in session.execute(stmt):
        f = features(_golden(row))
        if has_keys(f):  # a row no blocking key finds is never compared: leave it out
            rows.add(row[0], f, set())
        n += 1
        if advance and n % PAGE == 0:
            advance(PAGE)
    if advance:
        advance(n % PAGE)
    several = (
        select(SourceRecord.customer_id)
        .group_by(SourceRecord.customer_id)
        .having(func.count() > 1)
        .subquery()
    )
    stmt = (
        select(SourceRecord.customer_id, SourceRecord.data)
        .join(several, several.c.customer_id == SourceRecord.customer_id)
        .order_by(SourceRecord.customer_id)
        .execution_options(yield_per=PAGE)
    )
    current, known = None, set()
    for cid, data in session.execute(stmt):
        if cid != current:
            current, known = cid, {rows.features(i) for i in rows.of_customer.get(cid, ())}
        f = features(data)
        if has_keys(f):
            rows.add(cid, f, known)
    return rows


def customer_features(session: Session, ids: Iterable[int]) -> dict[int, list[Features]]:
    """Golden record and source records of each customer, as features (real time, explain)."""
    found: dict[int, list[Features]] = {}
    ordered = sorted(set(ids))
    for i in range(0, len(ordered), CHUNK):
        chunk = ordered[i : i + CHUNK]
        for row in session.execute(_golden_select().where(Customer.id.in_(chunk))):
            found.setdefault(row[0], []).append(features(_golden(row)))
        records = select(SourceRecord.customer_id, SourceRecord.data).where(
            SourceRecord.customer_id.in_(chunk)
        )
        for cid, data in session.execute(records):
            f = features(data)
            if f not in found.setdefault(cid, []):
                found[cid].append(f)
    return found


def golden_features(session: Session, ids: Iterable[int]) -> dict[int, Features]:
    found: dict[int, Features] = {}
    ordered = sorted(set(ids))
    for i in range(0, len(ordered), CHUNK):
        stmt = _golden_select().where(
            Customer.id.in_(ordered[i : i + CHUNK]), Customer.status == "active"
        )
        for row in session.execute(stmt):
            found[row[0]] = features(_golden(row))
    return found


# --- models ------------------------------------------------------------------------------


def current_model(session: Session) -> MatchModel | None:
    return session.scalars(select(MatchModel).order_by(MatchModel.version.desc()).limit(1)).first()


def require_model(session: Session) -> tuple[MatchModel, Params]:
    model = current_model(session)
    if model is None:
        raise NoModel("no matching model has been trained yet; run `relata dedupe train` first")
    params = Params.from_json(model.params)
    params.check()
    return model, params


def current_model_id(session: Session) -> int | None:
    return session.scalar(select(MatchModel.id).order_by(MatchModel.version.desc()).limit(1))


def save_model(session: Session, trained: Trained, backend: str) -> MatchModel:
    version = (session.scalar(select(func.max(MatchModel.version))) or 0) + 1
    model = MatchModel(
        version=version,
        backend=backend,
        spec_hash=trained.params.spec_hash,
        splink=trained.splink,
        params=trained.params.as_json(),
        stats=trained.stats,
    )
    session.add(model)
    session.flush()
    return model


def update_term_frequencies(
    session: Session, version: int, tf: dict[str, dict[str, float]]
) -> None:
    """The model's term frequencies as of the latest batch run, for real-time scoring."""
    model = session.scalars(select(MatchModel).where(MatchModel.version == version)).one()
    model.params = {**model.params, "tf": tf}
    session.flush()


# --- rejected pairs ----------------------------------------------------------------------


def _ordered(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


def reject(session: Session, a: int, b: int, reason: str) -> None:
    """Remember that ``a`` and ``b`` are different people (idempotent)."""
    x, y = _ordered(a, b)
    stmt = insert_ignoring_duplicates(session, MatchRejection.__table__).values(
        customer_a_id=x, customer_b_id=y, reason=reason[:200], created_at=utcnow()
    )
    session.execute(stmt)


def rejected_pairs(session: Session, among: Iterable[int] | None = None) -> set[tuple[int, int]]:
    """Rejections as pairs of the customers both sides belong to now.

    ``among``: only rejections touching these customers' original ids (real time); None
    reads them all (batch).
    """
    stmt = select(MatchRejection.customer_a_id, MatchRejection.customer_b_id)
    pairs: list[tuple[int, int]] = []
    if among is None:
        pairs = [(a, b) for a, b in session.execute(stmt)]
    else:
        ids = sorted(set(among))
        for i in range(0, len(ids), CHUNK):
            chunk = ids[i : i + CHUNK]
            pairs += [
                (a, b)
                for a, b in session.execute(
                    stmt.where(
                        MatchRejection.customer_a_id.in_(chunk)
                        | MatchRejection.customer_b_id.in_(chunk)
                    )
                )
            ]
    if not pairs:
        return set()
    roots = resolve_ids(session, {x for p in pairs for x in p})
    return {_ordered(roots[a], roots[b]) for a, b in pairs if roots[a] != roots[b]}


# --- blocking keys -----------------------------------------------------------------------


def _key_rows(rows: Rows) -> Iterator[tuple[int, int]]:
    seen: set[tuple[int, int]] = set()
    for i, cid in enumerate(rows.customer):
        for key in keys_of(rows.features(i)):
            item = (key_hash(key), cid)
            if item not in seen:
                seen.add(item)
                yield item


def rebuild_keys(session: Session, rows: Rows) -> int:
    """Replace every blocking key by those of ``rows`` (all active customers)."""
    session.execute(delete(MatchKey))
    batch: list[tuple[int, int]] = []
    count = 0
    table = MatchKey.__table__
    for item in _key_rows(rows):
        batch.append(item)
        if len(batch) >= PAGE:
            bulk_insert(session, table, ["key_hash", "customer_id"], batch)
            count += len(batch)
            batch = []
    bulk_insert(session, table, ["key_hash", "customer_id"], batch)
    return count + len(batch)


def add_keys(session: Session, customer_id: int, f: Features) -> None:
    values = [{"key_hash": key_hash(k), "customer_id": customer_id} for k in keys_of(f)]
    if values:
        session.execute(insert_ignoring_duplicates(session, MatchKey.__table__), values)


def candidates(session: Session, f: Features, limit: int) -> set[int]:
    """Customers sharing a blocking key with ``f``: one statement, index seeks only.

    Keys more rows share than `MAX_BLOCK` were left out when the keys were indexed, so a
    key finds a handful of customers; ``limit`` bounds the work all the same.
    """
    hashes = [key_hash(k) for k in keys_of(f)]
    if not hashes:
        return set()
    stmt = select(MatchKey.customer_id).where(MatchKey.key_hash.in_(hashes)).limit(limit)
    return set(session.scalars(stmt))
