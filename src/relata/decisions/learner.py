"""The learner: a process of its own that folds outcomes into the shared counts.

A server process folding in a thread (engine._Background) shares the GIL with its event
loop: on the 1,000,000-customer bench, each second's fold (some 25 ms of Python and
PostgreSQL work for 250 outcomes) held up the decisions answered meanwhile, and the p99 at
200 decisions/s was 13–15 ms against 5 ms with no fold at all; the same fold in a process
of its own at low CPU priority gave 9 ms (docs/benchmarks.md, 4 December 2026).

So on PostgreSQL ``relata serve`` starts one learner beside its workers and tells them
not to fold (``RELATA_DECISION_FOLD_IN_SERVER=false``); they keep reloading the counts it
writes. A deployment that runs its API processes another way runs ``relata decisions
learn`` once or more next to them (the fold's advisory lock lets one fold at a time).
SQLite keeps the fold in the server: there the group-commit writer must hold the one
write lock for it, and another process would queue for that lock behind the decisions.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable

from relata.config import Settings
from relata.db import Database
from relata.decisions import sync

log = logging.getLogger("relata.learner")
# Outcomes a transaction. Rows being marked folded are locked until it commits, and a
# response adding an outcome with the same key waits for that (ON CONFLICT): short.
BATCH = 250
NICE = 10  # below the API processes: decisions first, learning in the gaps


def fold_all(db: Database, settings: Settings) -> int:
    """Fold every outcome waiting now; how many."""
    total = 0
    while True:
        with db.session() as session:
            done = sync.fold(session, settings.decision_half_life_days, BATCH)
        total += done
        if done < BATCH:
            return total


def run(
    db: Database,
    settings: Settings,
    stop: threading.Event,
    alive: Callable[[], bool] = lambda: True,
) -> None:
    """Fold every ``decision_fold_seconds`` until ``stop`` is set or ``alive()`` is false."""
    every = settings.decision_fold_seconds or 1.0
    while not stop.is_set() and alive():
        try:
            fold_all(db, settings)
        except Exception:  # the next round tries again; decisions never wait for it
            log.exception("folding decision outcomes failed")
        stop.wait(every)


def lower_priority(nice: int = NICE) -> None:
    try:
        os.nice(nice)
    except OSError:  # not permitted here: learn at the same priority
        log.warning("could not lower the learner's CPU priority")


def wanted(settings: Settings) -> bool:
    """Should ``relata serve`` start a learner (and keep its workers from folding)?"""
    return (
        settings.database_url.startswith("postgresql")
        and settings.decision_fold_seconds > 0
        and settings.decision_fold_in_server
    )


class Supervisor(threading.Thread):
    """Keeps one learner child running while the server runs: one that ended (killed,
    out of memory) is started again, so that learning does not stop unnoticed."""

    def __init__(self, every: float = 2.0) -> None:
        super().__init__(name="relata-learner-supervisor", daemon=True)
        self.every = every
        self.child = spawn()
        self.restarts = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.every):
            code = self.child.poll()
            if code is not None and not self._halt.is_set():
                log.warning("the learner ended (exit code %s); starting it again", code)
                self.child = spawn()
                self.restarts += 1

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)
        stop_child(self.child)


def spawn() -> subprocess.Popen[bytes]:
    """``relata decisions learn`` as a child of this process, which it outlives by at most
    one round (it checks that its parent is still there)."""
    cmd = [
        sys.executable,
        "-c",
        "from relata.cli import app; app()",
        "decisions",
        "learn",
        "--parent",
        str(os.getpid()),
    ]
    return subprocess.Popen(cmd, env=dict(os.environ))


def stop_child(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()


def parent_alive(parent: int | None) -> Callable[[], bool]:
    if parent is None:
        return lambda: True
    return lambda: os.getppid() == parent


def until_signalled() -> threading.Event:
    """An event set by SIGTERM or SIGINT: the loop ends after the current round."""
    stop = threading.Event()

    def handle(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop
