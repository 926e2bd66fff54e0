"""Engine, sessions, metadata and migrations.

SQLite is the embedded default (a file in WAL mode); PostgreSQL is production.
Write transactions on SQLite start with ``BEGIN IMMEDIATE`` so that two writers
queue on the busy timeout instead of failing on a lock upgrade.
"""

from __future__ import annotations

import hashlib
import logging
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Table,
    create_engine,
    event,
    text,
)
from sqlalchemy import exc as sqlalchemy_exc
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from relata import point_reads

log = logging.getLogger("relata.db")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")
JSONType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the way in and out, on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; relata stores UTC-aware datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def make_engine(url: str, **kwargs: Any) -> Engine:
    kwargs.setdefault("json_serializer", _json_text)
    kwargs.setdefault("json_deserializer", orjson.loads)
    if url.startswith("sqlite"):
        return _sqlite_engine(url, **kwargs)
    return create_engine(url, pool_pre_ping=True, **kwargs)


# Pages of WAL after which a commit checkpoints, where not SQLite's default of 1,000 (a
# server's Database: its own thread checkpoints, see checkpoints.py).
_autocheckpoint: weakref.WeakKeyDictionary[Engine, int] = weakref.WeakKeyDictionary()


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    if make_url(url).database not in (None, "", ":memory:"):  # in memory: one connection
        # LIFO: the connection used last is warmest (SQLite caches pages per connection).
        kwargs.setdefault("pool_use_lifo", True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, see below
        cur = dbapi_conn.cursor()
        if not url.endswith(":memory:"):
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA cache_size=-262144")  # 256 MiB: bulk imports touch big indexes
        cur.execute("PRAGMA mmap_size=1073741824")
        pages = _autocheckpoint.get(engine)
        if pages is not None:
            cur.execute(f"PRAGMA wal_autocheckpoint={int(pages)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """The engine and the two kinds of session relata opens on it."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._writes = self.engine.execution_options(sqlite_immediate=True)
        self._write = sessionmaker(self._writes, expire_on_commit=False)
        self._read = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self, write: bool = True) -> Iterator[Session]:
        """One transaction: a write is committed when the block ends; rolled back on error."""
        session = (self._write if write else self._read)()
        try:
            yield session
            if write:
                session.commit()
            # A read never writes, even by accident: closing discards its transaction
            # (and, unlike rollback, leaves loaded objects readable).
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def write_connection(self) -> Connection:
        """A connection of its own for a long-lived writer (writer.py): its transactions
        begin as a write session's do (on SQLite, BEGIN IMMEDIATE)."""
        return self._writes.connect()

    @property
    def in_memory(self) -> bool:
        return self.is_sqlite and make_url(self.url).database in (None, "", ":memory:")

    def set_autocheckpoint(self, pages: int) -> None:
        """(SQLite) Checkpoint the WAL on commit after ``pages`` pages, 0 for never: for
        connections opened from now on, so the pool's idle ones are closed."""
        _autocheckpoint[self.engine] = pages
        point_reads.dispose(self.engine)
        self.engine.pool.dispose()

    def migrate(self) -> None:
        migrate(self.engine)

    def dispose(self) -> None:
        point_reads.dispose(self.engine)
        self.engine.dispose()


def alembic_config() -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema up to the newest migration."""
    from alembic import command

    cfg = alembic_config()
    # On SQLite, take the write lock up front so a second process waits its turn
    # instead of failing on a lock upgrade.
    with engine.execution_options(sqlite_immediate=True).connect() as conn:
        if conn.dialect.name == "postgresql":
            # Many server processes start at once; one migrates, the others wait.
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _key_hash("migrate")})
        else:
            # Begin (IMMEDIATE) before Alembic sees the connection: it then runs every
            # migration in this one transaction instead of committing after each, which
            # let a second process see a half-migrated file and run a migration twice.
            conn.exec_driver_sql("SELECT 1")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        conn.commit()


def is_retryable(exc: BaseException) -> bool:
    """A deadlock or serialisation failure: the transaction may simply be run again."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in {"40P01", "40001"}


def lock_keys(session: Session, keys: Iterable[str]) -> None:
    """Serialise writers that touch the same identifiers, until the transaction ends.

    PostgreSQL takes a transaction-scoped advisory lock per key, in sorted order so
    two writers never deadlock on each other. SQLite needs nothing: its write
    transaction (BEGIN IMMEDIATE) already excludes every other writer.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    ids = sorted({_key_hash(k) for k in keys})
    if ids:
        session.execute(
            text("SELECT count(pg_advisory_xact_lock(k)) FROM unnest(CAST(:ids AS bigint[])) AS k"),
            {"ids": ids},
        )


def _key_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def customer_owned_tables() -> list[Table]:
    """Tables whose rows belong to a customer and move with it on merge and unmerge.

    A table opts in by having both ``customer_id`` (the customer it belongs to now)
    and ``origin_customer_id`` (the customer it was first attached to).
    """
    return [
        t
        for t in Base.metadata.sorted_tables
        if "customer_id" in t.c and "origin_customer_id" in t.c
    ]


def insert_ignoring_duplicates(session: Session, table: Table) -> Any:
    """An INSERT that skips rows whose unique key is stored already."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing()


def allocate_ids(session: Session, table: Table, n: int) -> list[int]:
    """``n`` fresh primary keys for ``table``, so bulk inserts need no RETURNING."""
    if n == 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(
            text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
            {"t": table.name, "n": n},
        )
        return [r[0] for r in rows]
    # SQLite: the write transaction (BEGIN IMMEDIATE) holds the only write lock.
    start = session.execute(text(f"SELECT coalesce(max(id), 0) FROM {table.name}")).scalar_one()
    return list(range(start + 1, start + n + 1))


def converted(dialect: Any, table: Table, columns: list[str], rows: list[tuple]) -> list[tuple]:
    """The rows as the driver takes them: each value through its column's bind processor."""
    processors = _processors(table, tuple(columns), dialect)
    if not any(processors):
        return rows
    values = [list(col) for col in zip(*rows, strict=True)]
    for i, process in enumerate(processors):
        if process is not None:
            values[i] = _convert_column(process, values[i])
    return list(zip(*values, strict=True))


_NEW_SQL: dict[tuple[str, tuple[str, ...], tuple[str, ...], int], str] = {}
_NEW_CHUNKS = (64, 16, 4, 1)  # few statement shapes, each compiled once by SQLite's cache


def insert_new_sqlite(
    session: Session,
    table: Table,
    columns: list[str],
    rows: list[tuple],
    returning: tuple[str, ...] = (),
) -> set[tuple[Any, ...]]:
    """On SQLite: insert the rows whose unique key is not stored yet and return their
    ``returning`` columns (if any), through the driver in multi-row statements. SQLAlchemy's
    executemany with RETURNING built a parameter dictionary a row and was most of a batch
    of decision responses."""
    conn = session.connection()
    dialect = conn.dialect
    rows = converted(dialect, table, columns, rows)
    readers = [
        table.c[c].type.dialect_impl(dialect).result_processor(dialect, None) for c in returning
    ]
    found: set[tuple[Any, ...]] = set()
    cursor = conn.connection.cursor()
    try:
        at = 0
        while at < len(rows):
            size = next(n for n in _NEW_CHUNKS if n <= len(rows) - at)
            chunk = rows[at : at + size]
            cursor.execute(
                _new_sql(table.name, tuple(columns), returning, size),
                [v for row in chunk for v in row],
            )
            for got in cursor.fetchall() if returning else ():
                found.add(
                    tuple(v if r is None else r(v) for r, v in zip(readers, got, strict=True))
                )
            at += size
    finally:
        cursor.close()
    return found


def _new_sql(name: str, columns: tuple[str, ...], returning: tuple[str, ...], n: int) -> str:
    key = (name, columns, returning, n)
    found = _NEW_SQL.get(key)
    if found is None:
        row = "(" + ", ".join("?" * len(columns)) + ")"
        found = _NEW_SQL[key] = (
            f"INSERT INTO {name} ({', '.join(columns)}) VALUES {', '.join([row] * n)} "
            "ON CONFLICT DO NOTHING" + (f" RETURNING {', '.join(returning)}" if returning else "")
        )
    return found


_PROCESSORS: dict[tuple[Any, ...], list[Any]] = {}


def _processors(table: Table, columns: tuple[str, ...], dialect: Any) -> list[Any]:
    """The bind processors of these columns, looked up once: a group commit's flush of a
    single decision spent a fifth of its time asking SQLAlchemy for them again."""
    key = (table, columns, dialect.name, getattr(dialect, "_json_serializer", None))
    found = _PROCESSORS.get(key)
    if found is None:
        found = [table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns]
        _PROCESSORS[key] = found
    return found


def _convert_column(process: Any, column: list[Any]) -> list[Any]:
    # A batch shares one timestamp object across rows: convert it once.
    out, last, last_out = [], object(), None
    for value in column:
        if value is not last:
            last, last_out = value, None if value is None else process(value)
        out.append(last_out)
    return out


ON_COMMIT = "relata.on_commit"  # session.info key: callables for after the commit
_LISTENING = "relata.on_commit.listening"


def on_commit(session: Session, fn: Callable[[], None]) -> None:
    """Call ``fn`` once the session's transaction has committed; never if it rolls back.

    The group-commit writer takes them (``take_on_commit``) and runs them itself after its
    commit: an event listener registered a job cost a tenth of a one-decision batch.
    Elsewhere one pair of listeners a session runs them all, or drops them on a rollback.
    """
    pending = session.info.get(ON_COMMIT)
    if pending is None:
        pending = session.info[ON_COMMIT] = []
        if not session.info.get(_LISTENING):
            session.info[_LISTENING] = True
            event.listen(session, "after_commit", _committed)
            event.listen(session, "after_soft_rollback", _rolled_back)
    pending.append(fn)


def take_on_commit(session: Session) -> list[Callable[[], None]]:
    """What ``on_commit`` gathered, handed to the caller (who will run it after committing)."""
    return session.info.pop(ON_COMMIT, None) or []


def run_after_commit(callbacks: list[Callable[[], None]]) -> None:
    """Run what ``take_on_commit`` handed over; one failing does not stop the others, and
    none undoes the commit (it is logged: committed is committed)."""
    for fn in callbacks:
        try:
            fn()
        except Exception:
            log.exception("work after a commit failed")


def _committed(session: Session) -> None:
    run_after_commit(take_on_commit(session))


def _rolled_back(session: Session, previous: Any) -> None:
    # Session.rollback(), even one that never reached the database (after_rollback would
    # miss that); a savepoint's rollback leaves the transaction's callbacks alone (tested).
    session.info.pop(ON_COMMIT, None)


DEFERRED = "relata.deferred_inserts"  # session.info key: rows waiting for flush_deferred


def defer_insert(session: Session, table: Table, columns: list[str], rows: list[tuple]) -> None:
    """``bulk_insert`` now, or, in a session that gathers them (the group-commit writer's),
    together with the same table's rows of the other jobs just before the commit. Only
    for rows nothing in the same transaction reads back."""
    pending = session.info.get(DEFERRED)
    if pending is None:
        bulk_insert(session, table, columns, rows)
    elif rows:
        pending.setdefault((table, tuple(columns)), []).extend(rows)


def flush_deferred(session: Session) -> None:
    """Insert what ``defer_insert`` gathered, table by table in the order first seen.

    On PostgreSQL one statement a table, all sent in one pipeline: a COPY a table took
    three round trips each, and a group commit of one decision touches five tables
    (profiled: 0.6 of the writer's 1.05 ms a decision). A few rows go as one ``INSERT …
    VALUES``, more as ``INSERT … SELECT FROM unnest(arrays)`` (one parameter a column)."""
    pending = session.info.pop(DEFERRED, None) or {}
    if not pending:
        return
    conn = session.connection()
    try:
        _flush(session, conn, pending)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise _raised(conn, exc, "INSERT (deferred rows)") from exc


def _raised(bind: Connection, exc: Exception, sql: str) -> sqlalchemy_exc.DBAPIError:
    """A driver's error as SQLAlchemy raises it (IntegrityError, OperationalError, …), so
    that the writer sees a lost connection and callers catch one kind of error."""
    driver = bind.connection.driver_connection
    invalidated = bind.dialect.is_disconnect(exc, driver, None)
    if invalidated:
        bind.invalidate(exc)
    return sqlalchemy_exc.DBAPIError.instance(
        sql,
        None,
        exc,
        bind.dialect.loaded_dbapi.Error,
        connection_invalidated=invalidated,
        dialect=bind.dialect,
    )


def _flush(session: Session, conn: Connection, pending: dict[Any, list[tuple]]) -> None:
    if conn.dialect.name != "postgresql":
        for (table, columns), rows in pending.items():
            bulk_insert(session, table, list(columns), rows)
        return
    from psycopg import RawCursor  # PostgreSQL only: SQLite installs need not import it

    driver = conn.connection.driver_connection
    with RawCursor(driver) as cursor, driver.pipeline():
        for shape, params in _statements(conn.dialect, pending):
            cursor.execute(_insert_sql(conn.dialect, shape), params)


def commit_deferred_at_once(session: Session) -> bool:
    """Commit what ``defer_insert`` gathered as one statement, if that is all there is.

    When the jobs of a group commit only handed rows to ``defer_insert`` (a decision's
    log, audit rows), the session never began a transaction. On PostgreSQL the rows then
    go as one INSERT a table joined by data-modifying CTEs (``WITH a AS (INSERT …) INSERT
    …``), run in autocommit: one statement, one round trip, atomic. The pipeline with its
    BEGIN, a statement a table and the COMMIT cost the writer ~1.7 ms of Python a
    one-decision batch, most of it psycopg driving the pipeline (py-spy, 4 Dec). False
    when this does not apply: the caller flushes and commits as usual."""
    pending = session.info.get(DEFERRED)
    if not pending or session.in_transaction():
        return False
    bind = session.get_bind()
    if not isinstance(bind, Connection) or bind.dialect.name != "postgresql":
        return False
    if bind.in_transaction():
        return False
    driver = bind.connection.driver_connection
    if driver.info.transaction_status != 0:  # IDLE: autocommit may be switched on
        return False
    from psycopg import RawCursor  # PostgreSQL only: SQLite installs need not import it

    del session.info[DEFERRED]
    sql, params = _at_once(bind.dialect, pending)
    error = bind.dialect.loaded_dbapi.Error
    driver.autocommit = True
    try:
        with RawCursor(driver) as cursor:
            cursor.execute(sql, params)
    except error as exc:
        raise _raised(bind, exc, sql) from exc
    finally:
        if not driver.closed:
            driver.autocommit = False
    return True


def _at_once(dialect: Any, pending: dict[tuple[Table, tuple[str, ...]], list[tuple]]) -> Any:
    statements = _statements(dialect, pending)
    key = tuple((t.name, c, n) for (t, c, n), _ in statements)
    sql = _AT_ONCE_SQL.get(key)
    if sql is None:
        parts, start = [], 0
        for shape, params in statements:
            parts.append(_insert_sql(dialect, shape, start))
            start += len(params)
        ctes = ", ".join(f"w{i} AS ({part})" for i, part in enumerate(parts[:-1]))
        sql = _AT_ONCE_SQL[key] = f"WITH {ctes} {parts[-1]}" if ctes else parts[0]
    return sql, [v for _, params in statements for v in params]


_AT_ONCE_SQL: dict[tuple[tuple[str, tuple[str, ...], int], ...], str] = {}
Shape = tuple[Table, tuple[str, ...], int]  # a table, its columns, n rows as VALUES (0: unnest)
# Up to this many rows a table: one INSERT … VALUES with a parameter a value, which
# psycopg dumps in C; its array dumpers are Python, a cost a column that made a group
# commit of one decision 15 % dearer in Python and 25 % on the server (bench A/B, 4 Dec).
VALUES_UP_TO = 8


def _statements(dialect: Any, pending: dict[Any, list[tuple]]) -> list[tuple[Shape, list[Any]]]:
    """Each table's gathered rows as one INSERT's shape and parameters: a few rows as VALUES
    (a parameter a value), more as ``unnest`` of one array a column."""
    out: list[tuple[Shape, list[Any]]] = []
    for (table, columns), rows in pending.items():
        rows = converted(dialect, table, list(columns), rows)
        if len(rows) <= VALUES_UP_TO:
            out.append(((table, columns, len(rows)), [v for row in rows for v in row]))
        else:
            out.append(((table, columns, 0), [list(col) for col in zip(*rows, strict=True)]))
    return out


# PostgreSQL's own $n placeholders, run through a RawCursor: psycopg parses a query's %s
# placeholders anew on every execution once it has more than 50 parameters (its cache
# stops there), a fifth of the writer's time; a RawCursor parses nothing.
_INSERT_SQL: dict[tuple[str, tuple[str, ...], int, int], str] = {}


def _insert_sql(dialect: Any, shape: Shape, start: int = 0) -> str:
    """The INSERT of ``shape``, its placeholders numbered from ``start`` + 1."""
    table, columns, n = shape
    key = (table.name, columns, n, start)
    found = _INSERT_SQL.get(key)
    if found is None:
        head = f"INSERT INTO {table.name} ({', '.join(columns)})"
        width = len(columns)
        if n:
            rows = (
                "(" + ", ".join(f"${start + r * width + i + 1}" for i in range(width)) + ")"
                for r in range(n)
            )
            found = f"{head} VALUES {', '.join(rows)}"
        else:
            # Each array typed as its column (a binary parameter carries no column type).
            types = [table.c[c].type.compile(dialect=dialect) for c in columns]
            arrays = ", ".join(f"${start + i + 1}::{t}[]" for i, t in enumerate(types))
            found = f"{head} SELECT * FROM unnest({arrays})"
        _INSERT_SQL[key] = found
    return found


def bulk_insert(session: Session, table: Table, columns: list[str], rows: list[tuple]) -> None:
    """INSERT many rows straight through the driver, converting values as SQLAlchemy would.

    The ORM and Core spend most of a bulk import building parameter dictionaries; for
    the hot path of imports we hand the driver ready tuples instead.
    """
    if not rows:
        return
    conn = session.connection()
    dialect = conn.dialect
    rows = converted(dialect, table, columns, rows)
    cursor = conn.connection.cursor()
    try:
        if dialect.name == "postgresql":
            # COPY: one stream instead of a statement per row (100k statements → 1).
            with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" * len(columns))
            cursor.executemany(
                f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})", rows
            )
    finally:
        cursor.close()
