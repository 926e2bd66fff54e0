"""One-statement reads on a hot path, straight through the driver.

A decision for a cached customer reads one row (the customer's status). Through a
Session that row cost a pool checkout, a ``BEGIN``, the ORM's execution and a
``ROLLBACK``: about a quarter of the request. Here each thread keeps one connection of
its own, out of the pool and in autocommit mode, and runs the statement, compiled once
for the dialect: every read sees the latest commit and holds no transaction open (on
SQLite an open read transaction would pin an old snapshot and stall checkpoints).

Values come back as the driver gives them (no SQLAlchemy result processing): use it for
plain columns (numbers, text), not for dates or JSON.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from typing import Any

from sqlalchemy import Executable
from sqlalchemy.engine import Engine

_of: weakref.WeakKeyDictionary[Engine, PointReads] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def of(engine: Engine) -> PointReads:
    """The point reads of this engine (one set of connections a process)."""
    found = _of.get(engine)
    if found is None:
        with _lock:
            found = _of.setdefault(engine, PointReads(engine))
    return found


def dispose(engine: Engine) -> None:
    """Close every thread's connection of this engine (``Database.dispose``)."""
    with _lock:
        found = _of.pop(engine, None)
    if found is not None:
        found.close_all()


class PointReads:
    def __init__(self, engine: Engine) -> None:
        # Weakly: _of's value must not keep its own key (the engine) alive.
        self._engine = weakref.ref(engine)
        self.dialect = engine.dialect
        self._local = threading.local()
        self._open: set[Any] = set()  # every thread's (wrapper, connection), to close them
        self._open_lock = threading.Lock()
        # An engine dropped without Database.dispose (a CLI command): closed with it.
        weakref.finalize(self, _close_each, self._open)
        self._compiled: dict[int, tuple[Executable, str, tuple[str, ...] | None]] = {}

    def first(self, stmt: Executable, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """The statement's first row, or None."""
        sql, order = self._compile(stmt)
        args: Any = tuple(params[k] for k in order) if order is not None else params
        try:
            return self._run(self._connection(), sql, args)
        except self.dialect.loaded_dbapi.Error:
            # A connection the server dropped (a restart): once more on a fresh one.
            self.close()
            return self._run(self._connection(), sql, args)

    def connection(self) -> Any:
        """This thread's driver connection (autocommit), for a one-statement read that
        ``first`` does not fit; on a driver error, ``close`` it and read elsewhere."""
        return self._connection()

    def close(self) -> None:
        """Close this thread's connection (the next read opens another)."""
        pooled = getattr(self._local, "pooled", None)
        self._local.conn = self._local.pooled = None
        if pooled is not None:
            with self._open_lock:
                self._open.discard(pooled)
            _close(pooled)

    def close_all(self) -> None:
        with self._open_lock:
            found = list(self._open)
            self._open.clear()
        _close_each(found)

    @staticmethod
    def _run(conn: Any, sql: str, args: Any) -> tuple[Any, ...] | None:
        cursor = conn.cursor()
        try:
            cursor.execute(sql, args)
            row = cursor.fetchone()
        finally:
            cursor.close()
        return tuple(row) if row is not None else None

    def _compile(self, stmt: Executable) -> tuple[str, tuple[str, ...] | None]:
        found = self._compiled.get(id(stmt))
        if found is None or found[0] is not stmt:
            compiled = stmt.compile(dialect=self.dialect)  # type: ignore[attr-defined]
            order = tuple(compiled.positiontup) if compiled.positional else None
            found = self._compiled[id(stmt)] = (stmt, str(compiled), order)
        return found[1], found[2]

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            engine = self._engine()
            assert engine is not None, "the engine was disposed of"
            pooled = engine.raw_connection()
            conn = pooled.driver_connection
            pooled.detach()  # this thread's own from now on; the pool opens another
            self._local.pooled = (pooled, conn)
            with self._open_lock:
                self._open.add(self._local.pooled)
            if self.dialect.name == "postgresql":
                conn.rollback()  # the pool's ping may have opened a transaction
                conn.autocommit = True
            # SQLite: relata's connections already run without implicit transactions
            # (db._sqlite_engine); a statement outside BEGIN commits on its own.
            self._local.conn = conn
        return conn


def _close_each(held: Any) -> None:
    for each in list(held):
        _close(each)


def _close(held: tuple[Any, Any]) -> None:
    pooled, conn = held
    with contextlib.suppress(Exception):  # it is being thrown away
        conn.close()
        pooled.invalidate()
