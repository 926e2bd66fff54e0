"""Group commit: one writer thread, many requests a transaction (the decision log, audit rows).

Under load, every request thread opening its own write transaction makes them queue on
the database's write lock (SQLite's busy handler sleeps between retries), and each pays a
commit. Instead a server process hands its writes to one thread, which runs whatever
has queued up in one transaction and commits once. The request waits for that commit
before it answers, so "200" still means "logged". A batch that fails is run again job by
job, so one bad job fails alone.

Rows a job hands to ``db.defer_insert`` are gathered over the whole batch and inserted
once a table before the commit: a busy server's decisions and audit rows cost one
statement a table, not one a request. One writer a database a process (``shared``), so
audit rows and the decision log share that transaction instead of queueing on SQLite's
write lock behind each other.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from relata.db import DEFERRED, Database, flush_deferred

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
    __slots__ = ("fn", "future")

    def __init__(self, fn: Callable[[Session], Any]) -> None:
        self.fn = fn
        self.future: Future[Any] = Future()


class Writer:
    def __init__(self, db: Database, timeout: float = 30.0) -> None:
        self.db = db
        self.timeout = timeout
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn(session)`` in the next transaction and return its result once committed."""
        return self.submit(fn).result(self.timeout)

    def submit(self, fn: Callable[[Session], T]) -> Future[T]:
        """The same, without waiting: the future is done once committed (or failed)."""
        self._ensure_started()
        job = _Job(fn)
        self._queue.put(job)
        return job.future

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

    def _commit(self, batch: list[_Job]) -> None:
        try:
            with self.db.session() as session:
                session.info[DEFERRED] = {}
                results = [job.fn(session) for job in batch]
                flush_deferred(session)
        except BaseException as exc:
            if len(batch) == 1:
                batch[0].future.set_exception(exc)
                return
            for job in batch:  # one bad job must not fail the others
                self._alone(job)
            return
        for job, result in zip(batch, results, strict=True):
            job.future.set_result(result)

    def _alone(self, job: _Job) -> None:
        try:
            with self.db.session() as session:
                session.info[DEFERRED] = {}
                result = job.fn(session)
                flush_deferred(session)
        except BaseException as exc:  # handed to the waiting request, which answers for it
            job.future.set_exception(exc)
            return
        job.future.set_result(result)
