"""What a server process does differently from the CLI and tests: its garbage collector
(heap.py), SQLite's checkpoints (checkpoints.py), the snapshot loaded before the first
request."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from relata import checkpoints
from relata.api.app import create_app
from relata.config import Settings
from relata.db import Database
from relata.decisions.engine import engine_for


def test_settle_collects_cycles_then_freezes_and_serve_stops_automatic_full_passes() -> None:
    # In a process of its own: freezing the test runner's heap would outlive the test.
    script = textwrap.dedent(
        """
        import gc, weakref
        from relata import heap

        class Node:
            pass

        a, b = Node(), Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        del a, b
        kept = [Node() for _ in range(100)]
        gc.disable()  # only settle may collect from here on
        heap.serve()
        assert gone() is None, "the cycle survived settle"
        assert gc.get_freeze_count() > len(kept)
        assert gc.get_threshold()[2] == heap.THRESHOLDS[2]
        assert all(gc.is_tracked(k) for k in kept)
        c, d = Node(), Node()
        c.other, d.other = d, c
        late = weakref.ref(c)
        del c, d
        heap.settle()  # not thawed: what came since the freeze is collected
        assert late() is None
        e, f = Node(), Node()
        e.other, f.other = f, e
        frozen = weakref.ref(e)
        heap.settle()  # frozen while still in use
        del e, f
        heap.settle()
        assert frozen() is not None  # a cycle among frozen objects outlives a plain settle
        heap.settle(thaw=True)
        assert frozen() is None
        gc.set_threshold(700, 10, 10)
        heap.serve(periodic=False)  # nothing will settle again: the collector's own schedule
        assert gc.get_threshold() == (700, 10, 10)
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def _sqlite(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'relata.db'}")
    db.migrate()
    return db


def _autocheckpoint(db: Database) -> int:
    with db.engine.connect() as conn:
        return conn.execute(text("PRAGMA wal_autocheckpoint")).scalar_one()


def test_sqlite_keeps_its_automatic_checkpoints_unless_a_server_takes_them_over(
    tmp_path: Path,
) -> None:
    db = _sqlite(tmp_path)
    try:
        assert _autocheckpoint(db) == 1000
        db.set_autocheckpoint(0)
        assert _autocheckpoint(db) == 0  # the pool's old connections were closed
        checkpointer = checkpoints.Checkpointer(db, interval=0.02)
        checkpointer.start()
        try:
            with db.engine.begin() as conn:
                conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
                conn.execute(text("INSERT INTO t (v) VALUES (:v)"), [{"v": "x" * 500}] * 2000)
            runs = checkpointer.runs
            deadline = time.monotonic() + 5
            while checkpointer.runs < runs + 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            with db.engine.connect() as conn:
                busy, logged, copied = conn.execute(text("PRAGMA wal_checkpoint(PASSIVE)")).one()
            assert busy == 0
            assert logged == copied  # every frame of the WAL is in the database already
        finally:
            checkpointer.stop()
        assert not checkpointer.is_alive()
    finally:
        db.dispose()


def test_a_checkpointer_only_for_a_file_sqlite_database(db: Database) -> None:
    started = checkpoints.start(db)
    try:
        assert (started is not None) is db.is_sqlite
    finally:
        if started is not None:
            started.stop()
    memory = Database("sqlite://")
    try:
        assert checkpoints.start(memory) is None
    finally:
        memory.dispose()


def test_a_server_app_has_its_snapshot_before_the_first_request(
    db: Database, settings: Settings
) -> None:
    thresholds = gc.get_threshold()
    try:
        with TestClient(create_app(settings, db, server=True)):
            engine = engine_for(db, settings)
            assert engine.loads >= 1  # loaded at start, not by a decision
            assert gc.get_freeze_count() > 0
            assert gc.get_threshold()[2] > thresholds[2]
            if db.is_sqlite:
                assert _autocheckpoint(db) == 0  # its checkpointer thread took over
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


@pytest.mark.parametrize("server", [False, True])
def test_only_a_server_app_changes_the_garbage_collector(
    db: Database, settings: Settings, server: bool
) -> None:
    thresholds = gc.get_threshold()
    try:
        with TestClient(create_app(settings, db, server=server)):
            assert (gc.get_freeze_count() > 0) is server
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def _kill(db: Database, conn) -> None:  # type: ignore[no-untyped-def]
    """Drop the writer's connection under it, as a server restart would."""
    if db.is_sqlite:
        conn.connection.dbapi_connection.close()
        return
    pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    conn.rollback()
    with db.engine.connect() as admin:
        admin.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
        admin.commit()


def test_the_writer_keeps_one_connection_and_replaces_a_dropped_one(db: Database) -> None:
    from relata.writer import Writer

    writer = Writer(db)
    try:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE writer_probe (n INTEGER)")

        def insert(n: int):  # type: ignore[no-untyped-def]
            return lambda s: s.execute(text("INSERT INTO writer_probe VALUES (:n)"), {"n": n})

        writer.run(insert(1))
        first = writer._conn
        writer.run(insert(2))
        assert writer._conn is first  # not a checkout (and a ping) a batch
        _kill(db, first)
        writer.run(insert(3))  # run again on a new connection, once
        assert writer._conn is not first
        with db.engine.connect() as conn:
            stored = conn.exec_driver_sql("SELECT n FROM writer_probe ORDER BY n").scalars()
            assert list(stored) == [1, 2, 3]
    finally:
        writer.stop()
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE writer_probe")
