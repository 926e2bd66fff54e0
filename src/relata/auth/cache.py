"""Who a credential belongs to, remembered for a few seconds in each process.

The gate would otherwise look every API key and session up in the database, in a worker
thread: on a busy machine the thread hand-off costs more than the query. The price: a key
revoked, a user disabled or a session ended by *another* process keeps working here for
up to ``RELATA_AUTH_CACHE_SECONDS`` (default 5); in this process it ends at once. A
session or key never outlives its own expiry in the cache. 0 turns the cache off.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime

from relata.auth.permissions import Principal


class PrincipalCache:
    def __init__(
        self, seconds: float, size: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds, self.size, self.clock = seconds, size, clock
        self._entries: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        self._lock = threading.Lock()  # the logout view forgets from a worker thread

    def get(self, key: str, now: datetime) -> Principal | None:
        if self.seconds <= 0:
            return None
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            deadline, principal = found
            if deadline < self.clock() or (
                principal.valid_until is not None and principal.valid_until <= now
            ):
                del self._entries[key]
                return None
            return principal

    def put(self, key: str, principal: Principal) -> None:
        if self.seconds <= 0:
            return
        with self._lock:
            self._entries[key] = (self.clock() + self.seconds, principal)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def forget(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        """After a change that may take rights away (disable, revoke, new password)."""
        with self._lock:
            self._entries.clear()
