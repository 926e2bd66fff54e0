"""Customers just changed in what decides for them: forgotten by every process's caches.

A decision must not use a cached customer that a merge, an unmerge, an erasure, a
consent change or a new holding (in any process) has replaced. The transaction that
changes customers
calls :func:`changed`. When it commits, this process's subscribers (the decision engine's
cached customers, consent's cache) forget them at once; on PostgreSQL a ``NOTIFY`` sent
in the same transaction reaches every other process's :class:`Listener` a moment after
the commit (PostgreSQL delivers notifications only once their transaction commits).

So while its listener is connected, a server process need not read a cached customer's
status on every decision (decisions/service.py): anything that would change it is
announced. Without a listener (SQLite, or while its connection is lost) decisions read
the status as before, and a listener that reconnects first forgets everything, since
announcements may have been missed meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from relata.db import on_commit

log = logging.getLogger("relata.customer_changes")

CHANNEL = "relata_customers"
EVERYONE = "*"
# More customers in one transaction (a bulk merge, a large import of consents): every
# process forgets all of its cached customers instead.
MAX_IDS = 5_000
PAYLOAD_BYTES = 7_900  # a NOTIFY payload holds less than 8,000 bytes

Forget = Callable[[set[int] | None], None]  # the ids, or None for everyone

_subscribers: weakref.WeakKeyDictionary[Any, list[Forget]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def subscribe(engine: Engine, forget: Forget) -> None:
    """Call ``forget`` with the customers that changed in ``engine``'s database."""
    with _lock:
        _subscribers.setdefault(engine.pool, []).append(forget)


def unsubscribe(engine: Engine, forget: Forget) -> None:
    with _lock:
        found = _subscribers.get(engine.pool, [])
        if forget in found:
            found.remove(forget)


def forget(engine: Engine, ids: set[int] | None) -> None:
    """What a committed change (or a listener's announcement) tells this process."""
    with _lock:
        subscribers = list(_subscribers.get(engine.pool, ()))
    for each in subscribers:
        each(ids)


def changed(session: Session, customer_ids: Iterable[int]) -> None:
    """In the transaction that changes these customers: forgotten here when it commits,
    and (PostgreSQL) announced to every other process by the same commit."""
    ids = {int(i) for i in customer_ids}
    if not ids:
        return
    engine = session.get_bind().engine
    on_commit(session, lambda: forget(engine, ids))
    if engine.dialect.name == "postgresql":
        for payload in payloads(ids):
            session.execute(NOTIFY, {"channel": CHANNEL, "payload": payload})


NOTIFY = text("SELECT pg_notify(:channel, :payload)")


def payloads(ids: set[int]) -> list[str]:
    """The ids as comma-separated lists that each fit a NOTIFY, or EVERYONE for many."""
    if len(ids) > MAX_IDS:
        return [EVERYONE]
    out: list[str] = []
    part: list[str] = []
    size = 0
    for i in sorted(ids):
        item = str(i)
        if part and size + len(item) + 1 > PAYLOAD_BYTES:
            out.append(",".join(part))
            part, size = [], 0
        part.append(item)
        size += len(item) + 1
    if part:
        out.append(",".join(part))
    return out


def parse(payload: str) -> set[int] | None:
    if payload == EVERYONE:
        return None
    try:
        return {int(i) for i in payload.split(",") if i}
    except ValueError:  # not ours: forget everyone rather than guess
        log.warning("unexpected payload on %s: %.80r", CHANNEL, payload)
        return None


class Listener:
    """A thread that LISTENs on its own connection and passes announcements to ``forget``.

    ``live`` while it is listening. ``generation`` grows with each announcement and each
    (re)connection: a reader that noted it before reading a customer caches what it read
    only if it has not moved (the read may have raced the change)."""

    def __init__(self, engine: Engine, retry_seconds: float = 1.0) -> None:
        self._engine = engine
        self._retry = retry_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live = False
        self.generation = 0
        self._conn: Any = None
        # A channel of its own, on which ``stop`` wakes the thread from its wait.
        self._wake = f"relata_wake_{os.getpid()}_{id(self)}"

    @property
    def live(self) -> bool:
        return self._live

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="relata-changes", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._live:
            with contextlib.suppress(Exception), self._engine.connect() as conn:
                conn.execute(NOTIFY, {"channel": self._wake, "payload": ""})
                conn.commit()
        self._live = False
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as exc:  # the connection broke: read statuses until back
                if not self._stop.is_set():
                    log.warning("lost the %s listener (%s); retrying", CHANNEL, exc)
            finally:
                self._live = False
                self._close()
            self._stop.wait(self._retry)

    def _listen(self) -> None:
        pooled = self._engine.raw_connection()
        conn = pooled.driver_connection
        pooled.detach()  # this thread's own; the pool opens another
        self._conn = conn
        conn.rollback()  # the pool's ping may have opened a transaction
        conn.autocommit = True
        conn.execute(f"LISTEN {CHANNEL}")
        conn.execute(f"LISTEN {self._wake}")
        # Whatever was announced before LISTEN (or while disconnected) went unheard.
        self._announce(None)
        self._live = True
        while not self._stop.is_set():
            for notice in conn.notifies(timeout=1.0):
                if notice.channel != CHANNEL:
                    break  # woken by stop
                self._announce(parse(notice.payload))
            conn.execute("SELECT 1")  # a dead connection shows here, not only at the next notice

    def _announce(self, ids: set[int] | None) -> None:
        self.generation += 1  # first: a reader that races this must not cache
        forget(self._engine, ids)

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
