"""Customers read into memory for the Python compiler: only the rows the rules can see."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import JSON, Numeric, Text, bindparam, cast, select
from sqlalchemy import func as sa_func
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from relata.db import UTCDateTime
from relata.events.models import Event
from relata.identity.models import Identifier
from relata.ingest.models import Source
from relata.profiles.models import Customer, Holding
from relata.segments.profile import EventRow, HoldingRow, IdentifierRow, Profile
from relata.segments.rules import ast
from relata.segments.rules.ast import Node
from relata.segments.rules.registry import Registry
from relata.segments.rules.timing import moment_bounds

CHUNK = 500
# Events sent without the visitor's personalisation consent are kept, but never used to
# profile them: segments do not see them (the column comes with the consent work).
PROFILING = Event.__table__.c.get("profiling")
FIELD_COLUMNS = (
    "first_name",
    "last_name",
    "birth_date",
    "gender",
    "company",
    "email",
    "phone",
    "street",
    "house_number",
    "postcode",
    "city",
    "country",
    "customer_number",
    "loyalty_card",
    "created_at",
    "updated_at",
)
# name → fn(session, customer_ids) -> {customer_id: value}, stored in Profile.extra[name]
Loader = Callable[[Session, list[int]], dict[int, Any]]
_LOADERS: dict[str, Loader] = {}


@dataclass(frozen=True)
class Rows:
    """A registered loader's data as rows of one table, so that ``load_packed`` can read it
    in its one statement: ``columns`` of ``table`` where ``customer`` is the customer's id,
    and ``build``, which makes the customer's value of them (as the loader would have; also
    of no rows). Each row comes as a tuple of the driver's values, in no particular order."""

    table: Any
    customer: str
    columns: tuple[str, ...]
    build: Callable[[list[tuple[Any, ...]]], Any]


_ROWS: dict[str, Rows] = {}


def register_loader(name: str, loader: Loader, rows: Rows | None = None) -> None:
    """For fields registered by other domains (consents): their data, per customer.

    With ``rows``, live re-evaluation reads that data with the profile (one statement
    instead of two); ``loader`` stays what everything else calls."""
    _LOADERS[name] = loader
    if rows is None:
        _ROWS.pop(name, None)
    else:
        _ROWS[name] = rows


@dataclass(frozen=True)
class Needs:
    """What a set of rules reads: which events (all names, or these; since when)."""

    all_events: bool = False
    event_names: frozenset[str] = frozenset()
    events_since: datetime | None = None
    holdings: bool = False
    identifiers: bool = False
    extras: frozenset[str] = frozenset()

    @property
    def events(self) -> bool:
        return self.all_events or bool(self.event_names)


def needs_of(nodes: Iterable[Node], registry: Registry, now: datetime) -> Needs:
    names: set[str] = set()
    all_events = holdings = identifiers = False
    unbounded = False
    since: datetime | None = None
    extras: set[str] = set()
    sources: list[ast.Source] = []
    for root in nodes:
        for node in ast.walk(root):
            if isinstance(node, ast.Has | ast.Agg):
                sources.append(node.source)
            elif isinstance(node, ast.Cond) and (spec := registry.field(node.field)):
                if spec.trait is not None:
                    _, collection, _, where = spec.trait
                    sources.append(ast.Source(collection, None, where))
                extras.update(spec.loads)
    for source in sources:
        if source.collection == "events":
            if source.name is None:
                all_events = True
            else:
                names.add(source.name)
            lo = moment_bounds(source.window, now).lo if source.window else None
            if lo is None:
                unbounded = True
            elif isinstance(lo, datetime):
                since = lo if since is None else min(since, lo)
        elif source.collection == "identifiers":
            identifiers = True
        else:
            holdings = True
    return Needs(
        all_events,
        frozenset(names),
        None if unbounded else since,
        holdings,
        identifiers,
        frozenset(extras),
    )


def load_profiles(
    session: Session, customer_ids: Iterable[int], needs: Needs
) -> dict[int, Profile]:
    """Active customers among ``customer_ids``, with the rows ``needs`` asks for."""
    ids = sorted(set(customer_ids))
    profiles: dict[int, Profile] = {}
    # Core on the session's connection, statements built once: this runs after every
    # event, and building and ORM-executing a select cost more than the query itself.
    conn = session.connection()
    for chunk in _chunks(ids):
        for cid, *values in conn.execute(_CUSTOMERS, {"ids": chunk}):
            profiles[cid] = Profile(cid, dict(zip(FIELD_COLUMNS, values, strict=True)))
    found = sorted(profiles)
    if not found:
        return profiles
    if needs.events:
        stmt = _events_statement(needs.all_events, needs.events_since is not None)
        params = {"names": sorted(needs.event_names), "since": needs.events_since}
        for chunk in _chunks(found):
            for cid, name, type_, source, at, props in conn.execute(stmt, {**params, "ids": chunk}):
                profiles[cid].events.append(EventRow(name, type_, source, at, props or {}))
    if needs.holdings:
        for chunk in _chunks(found):
            for cid, *rest in conn.execute(_HOLDINGS, {"ids": chunk}):
                profiles[cid].holdings.append(HoldingRow(*rest))
    if needs.identifiers:
        for chunk in _chunks(found):
            for cid, kind, value, at in conn.execute(_IDENTIFIERS, {"ids": chunk}):
                profiles[cid].identifiers.append(IdentifierRow(kind, value, at))
    for name in needs.extras:
        for cid, value in _LOADERS[name](session, found).items():
            profiles[cid].extra[name] = value
    return profiles


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i : i + CHUNK]


_IDS = bindparam("ids", expanding=True)
_C = Customer.__table__
_CUSTOMERS = select(_C.c.id, *(_C.c[c] for c in FIELD_COLUMNS)).where(
    _C.c.id.in_(_IDS), _C.c.status == "active"
)
_H = Holding.__table__
HOLDING_COLUMNS = ("kind", "product_id", "product_name", "category", "reference", "quantity",
                   "amount", "currency", "status", "started_at", "ended_at")  # fmt: skip
_HOLDINGS = select(_H.c.customer_id, *(_H.c[c] for c in HOLDING_COLUMNS)).where(
    _H.c.customer_id.in_(_IDS)
)
_I = Identifier.__table__
_IDENTIFIERS = select(_I.c.customer_id, _I.c.kind, _I.c.value, _I.c.created_at).where(
    _I.c.customer_id.in_(_IDS)
)
_EVENT_STATEMENTS: dict[tuple[bool, bool], Any] = {}


def _events_statement(all_names: bool, since: bool) -> Any:
    found = _EVENT_STATEMENTS.get((all_names, since))
    if found is None:
        e, src = Event.__table__, Source.__table__
        stmt = (
            select(e.c.customer_id, e.c.name, e.c.type, src.c.name, e.c.occurred_at, e.c.properties)
            .join_from(e, src, src.c.id == e.c.source_id)
            .where(e.c.customer_id.in_(_IDS))
        )
        if not all_names:
            stmt = stmt.where(e.c.name.in_(bindparam("names", expanding=True)))
        if since:
            stmt = stmt.where(e.c.occurred_at >= bindparam("since", type_=e.c.occurred_at.type))
        if PROFILING is not None:
            stmt = stmt.where(PROFILING.is_(True))
        found = _EVENT_STATEMENTS[(all_names, since)] = stmt
    return found


# --- one statement ---------------------------------------------------------------------------
#
# Live re-evaluation after an event reads one customer, and there a statement costs more
# than the rows it reads. ``load_packed`` reads the same profiles as ``load_profiles`` in
# one statement: the customers' rows, and each collection the rules need as one JSON array
# per customer (a correlated subquery on the index the separate statements use). The JSON
# is turned back into the values the driver would have given: on SQLite an array holds
# exactly the stored TEXT, INTEGER and REAL values, which the columns' own result processors
# convert; on PostgreSQL timestamps come as ISO text and numerics are sent as text.
#
# The statement is built in Core and compiled once per dialect and shape (the number of
# ids rounded up to a power of two, the last id repeated), then run on the driver's cursor
# of the session's connection, in its transaction, with SQLAlchemy's own bind and result
# processors: SQLAlchemy's execution of it (expanding IN lists, building the result) cost
# more than PostgreSQL took to answer (0.2 ms against 0.08 ms). A registered loader runs
# its own statement, unless it was registered with ``Rows``: then its rows are one more
# JSON array here.

# A further JSON array per customer, for the caller: (dialect, customers' id column) → it.
Packed = Callable[[str, Any], Any]


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    positions: tuple[str, ...] | None  # parameter order for a positional paramstyle
    binds: dict[str, Callable[[Any], Any]]  # bind processors by parameter name
    columns: list[Callable[[Any], Any] | None]  # result processors by column
    moment: Callable[[Any], Any]  # a timestamp from its JSON form
    holding: Callable[[list[Any]], tuple[Any, ...]]  # a holding's values from their JSON
    # registered loaders read here: name → (a row from its JSON form, Rows.build)
    extras: dict[str, tuple[Callable[[list[Any]], tuple[Any, ...]], Any]]


_PACKED: dict[tuple[Any, ...], _Compiled] = {}


def load_packed(
    session: Session,
    customer_ids: Iterable[int],
    needs: Needs,
    *also: Packed,
    params: dict[str, Any] | None = None,
    dbapi: Any | None = None,
) -> tuple[dict[int, Profile], dict[int, list[Any]]]:
    """``load_profiles`` in one statement; and per customer found (active or not) the
    decoded JSON arrays ``also`` asks for (each a list of lists, in the order given; their
    values in JSON form: ``row_converter`` makes them the driver's). ``params`` are the
    values of bind parameters the ``also`` subqueries name (typed: ``bindparam(name,
    type_=column.type)``). ``dbapi``: a driver connection in autocommit to run the
    statement on instead of the session's (``point_reads``: no checkout, BEGIN or
    ROLLBACK for one statement); the session then stays unconnected unless an extra
    the statement does not carry has to be loaded."""
    ids = sorted(set(customer_ids))
    conn = session.connection() if dbapi is None else None
    dialect = conn.dialect if conn is not None else session.get_bind().dialect
    names = sorted(needs.event_names)
    values: dict[str, Any] = {f"name_{i}": name for i, name in enumerate(names)}
    values["since"] = needs.events_since
    values.update(params or {})
    profiles: dict[int, Profile] = {}
    extra: dict[int, list[Any]] = {}
    width = len(FIELD_COLUMNS)
    raw = conn.connection.dbapi_connection if conn is not None else dbapi
    cursor = raw.cursor()  # type: ignore[union-attr]
    try:
        for chunk in _chunks(ids):
            size = _bucket(len(chunk))
            c = _packed(dialect, needs, also, size, len(names))
            for i in range(size):
                values[f"id_{i}"] = chunk[min(i, len(chunk) - 1)]
            params = {k: (f(v) if (f := c.binds.get(k)) else v) for k, v in values.items()}
            args = [params[k] for k in c.positions] if c.positions is not None else params
            try:
                cursor.execute(c.sql, args)
                fetched = cursor.fetchall()
            except dialect.loaded_dbapi.Error as exc:
                # Raised as SQLAlchemy would (callers catch and retry its errors), and a
                # lost connection is not handed back to the pool.
                invalidated = dialect.is_disconnect(exc, raw, cursor)
                if invalidated and conn is not None:
                    conn.invalidate(exc)
                raise DBAPIError.instance(
                    c.sql,
                    args,
                    exc,
                    dialect.loaded_dbapi.Error,
                    connection_invalidated=invalidated,
                    dialect=dialect,
                ) from exc
            for raw in fetched:
                row = [v if f is None else f(v) for f, v in zip(c.columns, raw, strict=True)]
                cid, status = row[0], row[1]
                arrays = row[2 + width :]
                extra[cid] = [_decode(a) for a in arrays[len(arrays) - len(also) :]]
                if status == "active":
                    profiles[cid] = _profile(c, needs, cid, row[2 : 2 + width], arrays)
    finally:
        cursor.close()
    found = sorted(profiles)
    if found:
        for name in needs.extras:
            if name in c.extras:
                continue
            for cid, value in _LOADERS[name](session, found).items():
                profiles[cid].extra[name] = value
    return profiles, extra


def _profile(c: _Compiled, needs: Needs, cid: int, fields: list[Any], arrays: list[Any]) -> Profile:
    profile = Profile(cid, dict(zip(FIELD_COLUMNS, fields, strict=True)))
    at = 0
    if needs.events:
        moment = c.moment
        profile.events = [
            EventRow(r[0], r[1], r[2], moment(r[3]), r[4] or {}) for r in _decode(arrays[at])
        ]
        at += 1
    if needs.holdings:
        holding = c.holding
        profile.holdings = [HoldingRow(*holding(r)) for r in _decode(arrays[at])]
        at += 1
    if needs.identifiers:
        moment = c.moment
        profile.identifiers = [IdentifierRow(r[0], r[1], moment(r[2])) for r in _decode(arrays[at])]
        at += 1
    for name, (convert, build) in c.extras.items():
        profile.extra[name] = build([convert(r) for r in _decode(arrays[at])])
        at += 1
    return profile


def _bucket(n: int) -> int:
    """The number of ids a statement is compiled for: few shapes, each compiled once."""
    size = 1
    while size < n:
        size *= 2
    return min(size, CHUNK)


def _decode(value: Any) -> list[Any]:
    if value is None:  # PostgreSQL's json_agg of no rows
        return []
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _packed(
    dialect: Any, needs: Needs, also: tuple[Packed, ...], ids: int, names: int
) -> _Compiled:
    """The statement for these needs, ``ids`` customer ids and ``names`` event names."""
    key = (
        dialect.name,
        needs.all_events,
        names,
        needs.events_since is not None,
        needs.holdings,
        needs.identifiers,
        tuple(sorted((n, id(_ROWS[n])) for n in needs.extras if n in _ROWS)),
        also,
        ids,
    )
    found = _PACKED.get(key)
    if found is not None:
        return found
    pg = dialect.name == "postgresql"
    agg, row = (
        (sa_func.json_agg, sa_func.json_build_array)
        if pg
        else (sa_func.json_group_array, sa_func.json_array)
    )
    c = _C

    def array(columns: list[Any], from_: Any, *where: Any) -> Any:
        values = [_as_json(col, pg) for col in columns]
        return select(agg(row(*values))).select_from(from_).where(*where).scalar_subquery()

    arrays = []
    if needs.events:
        e, src = Event.__table__, Source.__table__
        where = [e.c.customer_id == c.c.id]
        if not needs.all_events:
            where.append(e.c.name.in_([bindparam(f"name_{i}", type_=e.c.name.type)
                                       for i in range(names)]))  # fmt: skip
        if needs.events_since is not None:
            where.append(e.c.occurred_at >= bindparam("since", type_=e.c.occurred_at.type))
        if PROFILING is not None:
            where.append(PROFILING.is_(True))
        # The source's name looked up per event: joined, PostgreSQL scanned the customer's
        # events once per source.
        source = select(src.c.name).where(src.c.id == e.c.source_id).scalar_subquery()
        columns = [e.c.name, e.c.type, source, e.c.occurred_at, e.c.properties]
        arrays.append(array(columns, e, *where))
    holding_columns = [_H.c[name] for name in HOLDING_COLUMNS]
    if needs.holdings:
        arrays.append(array(holding_columns, _H, _H.c.customer_id == c.c.id))
    if needs.identifiers:
        columns = [_I.c.kind, _I.c.value, _I.c.created_at]
        arrays.append(array(columns, _I, _I.c.customer_id == c.c.id))
    extras = {}
    for name in sorted(needs.extras):
        rows = _ROWS.get(name)
        if rows is not None:
            columns = [rows.table.c[col] for col in rows.columns]
            arrays.append(array(columns, rows.table, rows.table.c[rows.customer] == c.c.id))
            extras[name] = (_row_converter(columns, dialect), rows.build)
    arrays.extend(make(dialect.name, c.c.id) for make in also)
    id_params = [bindparam(f"id_{i}", type_=c.c.id.type) for i in range(ids)]
    stmt = select(c.c.id, c.c.status, *(c.c[name] for name in FIELD_COLUMNS), *arrays).where(
        c.c.id.in_(id_params)
    )
    compiled = stmt.compile(dialect=dialect)
    positions = tuple(compiled.positiontup) if compiled.positional else None  # type: ignore[arg-type]
    binds = {}
    for name, bind in compiled.binds.items():
        process = bind.type._cached_bind_processor(dialect)
        if process is not None:
            binds[name] = process
    found = _PACKED[key] = _Compiled(
        str(compiled),
        positions,
        binds,
        [col.type._cached_result_processor(dialect, None) for col in stmt.selected_columns],
        _converter(Event.__table__.c.occurred_at, dialect),  # type: ignore[arg-type]
        _row_converter(holding_columns, dialect),
        extras,
    )
    return found


def row_converter(columns: list[Any], dialect: Any) -> Callable[[list[Any]], tuple[Any, ...]]:
    """What turns a JSON array row of ``columns`` (a ``load_packed`` extra) into the
    values the driver would have given for them."""
    return _row_converter(columns, dialect)


def _row_converter(columns: list[Any], dialect: Any) -> Callable[[list[Any]], tuple[Any, ...]]:
    by_column = [_converter(col, dialect) for col in columns]

    def convert(values: list[Any]) -> tuple[Any, ...]:
        return tuple(
            f(v) if f is not None and v is not None else v
            for f, v in zip(by_column, values, strict=True)
        )

    return convert


def json_rows(dialect_name: str, from_: Any, columns: list[Any], *where: Any) -> Any:
    """A scalar subquery: the rows of ``from_`` matching ``where`` as one JSON array of
    arrays of ``columns`` (an extra of ``load_packed``; ``row_converter`` reads a row)."""
    pg = dialect_name == "postgresql"
    agg, row = (
        (sa_func.json_agg, sa_func.json_build_array)
        if pg
        else (sa_func.json_group_array, sa_func.json_array)
    )
    values = [_as_json(col, pg) for col in columns]
    return select(agg(row(*values))).select_from(from_).where(*where).scalar_subquery()


def _as_json(column: Any, pg: bool) -> Any:
    """A column as a JSON array element: on SQLite stored JSON text as JSON, on PostgreSQL
    numerics as text (a JSON number would be read back as a float)."""
    if isinstance(column.type, JSON):
        return column if pg else sa_func.json(column)
    if pg and isinstance(column.type, Numeric):
        return cast(column, Text)
    return column


def _converter(column: Any, dialect: Any) -> Callable[[Any], Any] | None:
    """What turns the JSON form of one of ``column``'s values into the driver's value."""
    if isinstance(column.type, JSON):  # embedded as JSON: parsed with the array
        return None
    if dialect.name != "postgresql":
        return column.type._cached_result_processor(dialect, None)
    if isinstance(column.type, Numeric):
        return Decimal
    if isinstance(column.type, UTCDateTime):
        return lambda text: datetime.fromisoformat(text).astimezone(UTC)
    return None
