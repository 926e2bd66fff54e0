"""A small per-process cache of each customer's derived consent, for the permission check.

Bounded (least recently used goes first) and short-lived (``consent_cache_seconds``).
Writes through ``consent.service`` invalidate their customers at once and again when
their transaction ends, so this process never answers from a state it has replaced.
Anything else that moves or removes ledger rows (merge, unmerge, erasure; written by
other domains, in SQL of their own) is caught on the connection: an UPDATE or DELETE of
``consent_entries`` empties this database's cache, now and when it commits.

Per process: other processes see a change when their entry expires, so the TTL is how
stale an answer in another process may be.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from relata import customer_changes


class TTLCache:
    """Values keyed by customer id; a merged-away id's answer is filed under its survivor too."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[int, tuple[float, Any]] = OrderedDict()
        self._aliases: dict[int, set[int]] = {}  # survivor -> merged-away ids asked for

    def get(self, key: int, ttl: float) -> Any | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            stored, value = item
            if time.monotonic() - stored > ttl:
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return value

    def put(self, key: int, value: Any, size: int, root: int | None = None) -> None:
        if size <= 0:
            return
        with self._lock:
            self._items[key] = (time.monotonic(), value)
            self._items.move_to_end(key)
            if root is not None and root != key:
                self._aliases.setdefault(root, set()).add(key)
            while len(self._items) > size:
                gone, _ = self._items.popitem(last=False)
                self._aliases.pop(gone, None)

    def discard(self, keys: Iterable[int]) -> None:
        with self._lock:
            for key in keys:
                self._items.pop(key, None)
                for alias in self._aliases.pop(key, ()):
                    self._items.pop(alias, None)

    def forget(self, keys: set[int] | None) -> None:
        """A change announced (customer_changes.py): these customers, or everyone."""
        if keys is None:
            self.clear()
        else:
            self.discard(keys)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._aliases.clear()

    def __len__(self) -> int:
        return len(self._items)


# One cache per connection pool: a process talking to two databases keeps them apart.
_caches: weakref.WeakKeyDictionary[Any, TTLCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()
_PENDING = "relata.consent.invalidate"


def for_session(session: Session) -> TTLCache:
    pool = session.get_bind().engine.pool
    with _caches_lock:
        cache = _caches.get(pool)
        if cache is None:
            cache = _caches[pool] = TTLCache()
            customer_changes.subscribe(session.get_bind().engine, cache.forget)
        return cache


def invalidate(session: Session, customer_ids: Iterable[int]) -> None:
    """Forget these customers now, and again when the session's transaction ends; every
    other process forgets them when it commits (customer_changes.py)."""
    ids = set(customer_ids)
    cache = for_session(session)
    cache.discard(ids)
    customer_changes.changed(session, ids)
    pending = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = set()

        def _again(sess: Session, *_: Any) -> None:
            # An answer computed in between may have seen the old state (or, if this
            # transaction rolled back, a state that never was).
            cache.discard(sess.info.pop(_PENDING, set()))

        event.listen(session, "after_commit", _again, once=True)
        event.listen(session, "after_rollback", _again, once=True)
    pending.update(ids)


# --- ledger rows moved or removed behind the service's back ---------------------------------

_DIRTY = "relata.consent.dirty"


def _clear(pool: Any) -> None:
    with _caches_lock:
        cache = _caches.get(pool)
    if cache is not None:
        cache.clear()


def _watch(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
    head = statement[:64].lstrip()[:6].upper()
    if head in ("UPDATE", "DELETE") and "consent_entries" in statement[:200]:
        _clear(conn.engine.pool)
        conn.info[_DIRTY] = True


def _ended(conn: Any) -> None:
    if conn.info.pop(_DIRTY, False):
        _clear(conn.engine.pool)


# Every engine of the process: merges run on whichever engine the caller has.
event.listen(Engine, "after_cursor_execute", _watch)
event.listen(Engine, "commit", _ended)
event.listen(Engine, "rollback", _ended)
