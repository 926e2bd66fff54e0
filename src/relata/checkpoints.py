"""SQLite's write-ahead log copied back into the database by a thread of its own.

By default the commit that takes SQLite's WAL past 1,000 pages copies it into the
database file and syncs that to disk, and the commit's caller waits: in a server that
caller is the group-commit writer (writer.py), and every decision queued behind it
waited 8–12 ms, a few times a second. A server process instead turns the automatic
checkpoint off for its connections and runs a PASSIVE checkpoint every second here:
PASSIVE waits for no reader or writer, so commits go on while the pages are copied
(the lock each takes is SQLite's checkpoint lock, not the write lock). Everything else
that opens the database (the CLI, tests) keeps SQLite's automatic checkpoints.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from relata.db import Database

log = logging.getLogger("relata.checkpoints")
INTERVAL = 1.0  # seconds: at 500 decisions/s a second's WAL is a few hundred pages


class Checkpointer(threading.Thread):
    def __init__(self, db: Database, interval: float = INTERVAL) -> None:
        super().__init__(name="relata-sqlite-checkpoints", daemon=True)
        self.db, self.interval = db, interval
        self._halt = threading.Event()
        self.runs = 0

    def run(self) -> None:
        conn = self.db.engine.raw_connection()
        try:
            while not self._halt.wait(self.interval):
                self.checkpoint(conn)
            self.checkpoint(conn)
        finally:
            conn.close()

    def checkpoint(self, conn: object) -> None:
        try:
            cursor = conn.cursor()  # type: ignore[attr-defined]
            try:
                cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
                cursor.fetchall()
            finally:
                cursor.close()
            self.runs += 1
        except Exception:  # the next second tries again; commits never depend on it
            log.exception("checkpointing the SQLite WAL failed")

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)


def start(db: Database) -> Checkpointer | None:
    """Checkpoint ``db`` in the background from now on (a file SQLite database only)."""
    if not db.is_sqlite or db.in_memory:
        return None
    db.set_autocheckpoint(0)
    checkpointer = Checkpointer(db)
    checkpointer.start()
    return checkpointer
