"""Point reads: one statement through the driver on a connection of the thread's own."""

from __future__ import annotations

import threading

from sqlalchemy import bindparam, select, text

from relata import point_reads
from relata.ingest.models import Source

STMT = select(Source.__table__.c.name).where(Source.__table__.c.id == bindparam("id"))


def _add_source(db, name: str) -> int:
    with db.session() as s:
        source = Source(name=name, channel="shop", trust=50)
        s.add(source)
        s.flush()
        return source.id


def test_each_read_sees_the_latest_commit_and_holds_no_transaction(db):
    reads = point_reads.of(db.engine)
    first = _add_source(db, "shop")
    assert reads.first(STMT, {"id": first}) == ("shop",)
    assert reads.first(STMT, {"id": first + 1000}) is None
    second = _add_source(db, "till")  # a writer is not blocked by the reader's connection
    assert reads.first(STMT, {"id": second}) == ("till",)
    with db.session() as s:
        s.execute(text("UPDATE sources SET name = 'web' WHERE id = :i"), {"i": second})
    assert reads.first(STMT, {"id": second}) == ("web",)


def test_threads_have_connections_of_their_own_and_dispose_closes_them(db):
    reads = point_reads.of(db.engine)
    sid = _add_source(db, "shop")
    found = []
    threads = [
        threading.Thread(target=lambda: found.append(reads.first(STMT, {"id": sid})))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert found == [("shop",)] * 3
    assert len(reads._open) == 3
    point_reads.dispose(db.engine)
    assert not reads._open
    assert point_reads.of(db.engine) is not reads  # a fresh set, connecting again
    assert point_reads.of(db.engine).first(STMT, {"id": sid}) == ("shop",)


def test_a_connection_the_server_dropped_is_replaced(db):
    reads = point_reads.of(db.engine)
    sid = _add_source(db, "shop")
    assert reads.first(STMT, {"id": sid}) == ("shop",)
    reads._local.conn.close()  # as after a database restart
    assert reads.first(STMT, {"id": sid}) == ("shop",)
