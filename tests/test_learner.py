"""The learner (decisions/learner.py): folding in a process of its own, and the server
that leaves the fold to it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

from relata.config import Settings
from relata.db import Database
from relata.decisions import learner, service, sync
from relata.decisions.engine import Engine
from relata.decisions.schemas import DecisionRequest, OfferWrite
from tests.test_decisions import grant, person


def _outcome(db: Database, settings: Settings) -> None:
    from relata.decisions import offers

    eva = person(db, settings)
    grant(db, settings, eva)
    with db.session() as s:
        offers.create_offer(s, OfferWrite(key="a", name="A", channels=["web"], value=1), settings)
    with db.session() as s:
        service.decide(
            s, Engine(settings), settings, DecisionRequest(customer_id=eva, channel="web")
        )


def _pending(db: Database) -> int:
    with db.session(write=False) as s:
        return sync.pending(s)


def test_the_learner_folds_until_stopped_or_orphaned(db: Database) -> None:
    settings = Settings(database_url=db.url, decision_fold_seconds=0.05, decision_control_share=0)
    _outcome(db, settings)
    assert _pending(db) == 1
    stop = threading.Event()
    parent = [True]
    loop = threading.Thread(target=learner.run, args=(db, settings, stop, lambda: parent[0]))
    loop.start()
    deadline = time.monotonic() + 5
    while _pending(db) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _pending(db) == 0
    parent[0] = False  # the server that started it is gone
    loop.join(timeout=5)
    assert not loop.is_alive()
    assert not stop.is_set()


def test_only_a_postgresql_server_that_folds_gets_a_learner() -> None:
    pg = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    assert learner.wanted(Settings(database_url=pg))
    assert not learner.wanted(Settings(database_url="sqlite:///relata.db"))
    assert not learner.wanted(Settings(database_url=pg, decision_fold_seconds=0))
    assert not learner.wanted(Settings(database_url=pg, decision_fold_in_server=False))


def test_a_server_that_leaves_the_fold_to_a_learner_still_reloads(db: Database) -> None:
    settings = Settings(
        database_url=db.url,
        decision_fold_seconds=0.05,
        decision_sync_seconds=0.05,
        decision_fold_in_server=False,
        decision_control_share=0,
    )
    _outcome(db, settings)
    engine = Engine(settings)
    with db.session(write=False) as s:
        assert len(engine.snapshot(s).catalogue.offers) == 1
    engine.start(db)
    try:
        from relata.decisions import offers

        with db.session() as s:
            offers.create_offer(
                s, OfferWrite(key="b", name="B", channels=["web"], value=1), settings
            )
        deadline = time.monotonic() + 5
        while len(engine._snap.catalogue.offers) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(engine._snap.catalogue.offers) == 2  # reloaded in the background
        assert _pending(db) == 1  # but nobody folded
    finally:
        engine.stop()


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[str]:
    found = subprocess.run(["pgrep", "-P", str(pid), "-a"], capture_output=True, text=True)
    return found.stdout.splitlines()


def test_relata_serve_on_postgresql_runs_a_learner_and_ends_it(pg_schema: str) -> None:
    port = _port()
    env = {**os.environ, "RELATA_DATABASE_URL": pg_schema}
    server = subprocess.Popen(
        [sys.executable, "-c", "from relata.cli import app; app()", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        learners = [c for c in _children(server.pid) if "decisions learn" in c]
        assert len(learners) == 1, _children(server.pid)
        first = int(learners[0].split()[0])
        os.kill(first, signal.SIGKILL)  # a learner that dies is started again
        deadline = time.monotonic() + 15
        child = first
        while child == first and time.monotonic() < deadline:
            time.sleep(0.2)
            again = [c for c in _children(server.pid) if "decisions learn" in c]
            child = int(again[0].split()[0]) if again else first
        assert child != first
    finally:
        server.terminate()
        server.wait(timeout=30)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and os.path.exists(f"/proc/{child}"):
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{child}")
