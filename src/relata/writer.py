"""Group commit: one writer thread, many requests a transaction (the decision log, audit rows).

Under load, every request thread opening its own write transaction makes them queue on
the database's write lock (SQLite's busy handler sleeps between retries), and each pays a
commit. Instead a server process hands its writes to one thread, which runs whatever
has queued up in one transaction and commits once. The request waits for that commit
before it answers, so "200" still means "logged". A batch that fails is run again job by
job, so one bad job fails alone.

Rows a job hands to ``db.defer_insert`` are gathered over the whole batch and inserted
once a table before the commit: a busy server's decisions and audit rows cost one
statement a table, not one a request; on PostgreSQL, when that is all a batch does, one
statement for all its tables, committed on its own (``db.commit_deferred_at_once``).
One writer a database a process (``shared``), so audit rows and the decision log share
that transaction instead of queueing on SQLite's write lock behind each other.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import suppress
from typing import Any, TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from relata.db import (
    DEFERRED,
    ON_COMMIT,
    Database,
    commit_deferred_at_once,
    flush_deferred,
    run_after_commit,
    take_on_commit,
)

T = TypeVar("T")
log = logging.getLogger("relata.writer")
MAX_BATCH = 500
_STOP = object()
_shared_lock = threading.Lock()
_ATTRIBUTE = "_relata_shared_writer"  # on the Database: the two go together


def shared(db: Database) -> Writer:
    """This process's writer of ``db`` (the decision log, audit rows)."""
    found: Writer | None = getattr(db, _ATTRIBUTE, None)
    if found is None:
        with _shared_lock:
            found = getattr(db, _ATTRIBUTE, None)
            if found is None:
                found = Writer(db)
                setattr(db, _ATTRIBUTE, found)
    return found


class _Job:
    """A job and who waits for it: a thread (``future``) or an event loop (``waiter``)."""

    __slots__ = ("fn", "future", "loop", "waiter")

    def __init__(
        self, fn: Callable[[Session], Any], loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        self.fn = fn
        self.loop = loop
        if loop is None:
            self.future: Future[Any] = Future()
        else:
            self.waiter: asyncio.Future[Any] = loop.create_future()


def _deliver(done: list[tuple[_Job, bool, Any]]) -> None:
    """Hand each job its result (True) or exception (False): to a waiting thread directly,
    to an event loop in one callback a loop for the whole batch (a wake-up of the loop
    each, and none of wrap_future's chaining of two futures)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, bool, Any]]] = {}
    for item in done:
        job, ok, value = item
        if job.loop is None:
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)
        else:
            by_loop.setdefault(job.loop, []).append(item)
    for loop, items in by_loop.items():
        with suppress(RuntimeError):  # the loop was closed: nobody waits any more
            loop.call_soon_threadsafe(_settle, items)


def _settle(items: list[tuple[_Job, bool, Any]]) -> None:  # on the waiting event loop
    for job, ok, value in items:
        if job.waiter.done():  # cancelled: the request went away
            continue
        if ok:
            job.waiter.set_result(value)
        else:
            job.waiter.set_exception(value)


class Writer:
    def __init__(self, db: Database, timeout: float = 30.0) -> None:
        self.db = db
        self.timeout = timeout
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._conn: Connection | None = None  # the writer thread's; see _transaction

    def run(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn(session)`` in the next transaction and return its result once committed."""
        return self.submit(fn).result(self.timeout)

    def submit(self, fn: Callable[[Session], T]) -> Future[T]:
        """The same, without waiting: the future is done once committed (or failed)."""
        self._ensure_started()
        job = _Job(fn)
        self._queue.put(job)
        return job.future

    def submit_async(self, fn: Callable[[Session], T]) -> asyncio.Future[T]:
        """From a coroutine: an awaitable done once committed (or failed)."""
        self._ensure_started()
        job = _Job(fn, asyncio.get_running_loop())
        self._queue.put(job)
        return job.waiter

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._loop, name="relata-writer", daemon=True
                    )
                    self._thread.start()

    def stop(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout=10)
        conn, self._conn = self._conn, None
        if conn is not None:
            with suppress(Exception):
                conn.close()

    def _loop(self) -> None:  # the writer thread
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch: list[_Job] = [first]
            while len(batch) < MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    self._queue.put(_STOP)
                    break
                batch.append(more)
            self._commit(batch)

    def _transaction(self, work: Callable[[Session], T]) -> T:
        """``work`` in a transaction on the writer's own connection, kept from batch to
        batch: a checkout from the pool cost a ping of the server each time
        (pool_pre_ping), a fifth of a decision's commit on PostgreSQL. A connection the
        server dropped is replaced and ``work`` run once more on the new one."""
        if self.db.in_memory:  # one shared connection (StaticPool): go through the pool
            with self.db.session() as session:
                return work(session)
        for attempt in (1, 2):
            conn = self._conn
            if conn is None or conn.closed or conn.invalidated:
                conn = self._conn = self.db.write_connection()
            session = Session(bind=conn, expire_on_commit=False)
            session.info[ON_COMMIT] = []  # run below, not by an event listener (db.on_commit)
            session.info[DEFERRED] = {}
            try:
                result = work(session)
                if not commit_deferred_at_once(session):
                    flush_deferred(session)
                    session.commit()
                run_after_commit(take_on_commit(session))
                return result
            except DBAPIError as exc:
                with suppress(Exception):  # the connection may be gone
                    session.rollback()
                if not exc.connection_invalidated or attempt == 2:
                    raise
                log.warning("the writer's connection was lost; running the batch again")
            except BaseException:
                with suppress(Exception):
                    session.rollback()
                raise
            finally:
                session.close()
        raise AssertionError("unreachable")

    def _commit(self, batch: list[_Job]) -> None:
        try:
            results = self._transaction(lambda session: _run(session, batch))
        except BaseException as exc:
            if len(batch) == 1:
                _deliver([(batch[0], False, exc)])
                return
            # One bad job must not fail the others.
            _deliver([self._alone(job) for job in batch])
            return
        _deliver([(job, True, result) for job, result in zip(batch, results, strict=True)])

    def _alone(self, job: _Job) -> tuple[_Job, bool, Any]:
        try:
            (result,) = self._transaction(lambda session: _run(session, [job]))
        except BaseException as exc:  # handed to the waiting request, which answers for it
            return job, False, exc
        return job, True, result


def _run(session: Session, batch: list[_Job]) -> list[Any]:
    return [job.fn(session) for job in batch]
