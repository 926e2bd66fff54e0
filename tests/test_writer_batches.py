"""The group-commit writer's batches: rows handed to ``db.defer_insert`` are committed all
together or not at all, whichever way they go (on PostgreSQL one statement in autocommit
when a batch does nothing else, db.commit_deferred_at_once)."""

import threading

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, exc, text

from relata import writer as writer_module
from relata.db import Database, defer_insert
from relata.writer import Writer

META = MetaData()
A = Table("writer_probe_a", META, Column("id", Integer, primary_key=True), Column("v", String))
B = Table("writer_probe_b", META, Column("id", Integer, primary_key=True), Column("v", String))


@pytest.fixture
def tables(db: Database):
    META.create_all(db.engine)
    yield
    META.drop_all(db.engine)


@pytest.fixture
def at_once(monkeypatch: pytest.MonkeyPatch) -> list[bool | str]:
    """What db.commit_deferred_at_once answered, batch by batch."""
    seen: list[bool | str] = []
    real = writer_module.commit_deferred_at_once

    def spy(session):  # type: ignore[no-untyped-def]
        try:
            done = real(session)
        except Exception:
            seen.append("raised")
            raise
        seen.append(done)
        return done

    monkeypatch.setattr(writer_module, "commit_deferred_at_once", spy)
    return seen


def deferring(table: Table, ids: list[int], tag: str):  # type: ignore[no-untyped-def]
    def job(session):  # type: ignore[no-untyped-def]
        defer_insert(session, table, ["id", "v"], [(i, f"{tag}-ä{i}") for i in ids])
        return tag

    return job


def one_batch(writer: Writer, jobs: list) -> list:  # type: ignore[type-arg]
    """Submit ``jobs`` while the writer is held up, so that they queue and go as one batch."""
    started, release = threading.Event(), threading.Event()

    def hold(session):  # type: ignore[no-untyped-def]
        started.set()
        release.wait(10)

    held = writer.submit(hold)
    assert started.wait(10)
    futures = [writer.submit(job) for job in jobs]
    release.set()
    held.result(10)
    results = []
    for future in futures:
        try:
            results.append(future.result(10))
        except Exception as error:  # the test looks at which
            results.append(error)
    return results


def stored(db: Database, table: Table) -> dict[int, str]:
    with db.engine.connect() as conn:
        return {row[0]: row[1] for row in conn.execute(table.select())}


def test_a_bad_job_fails_alone_and_leaves_no_row_of_its_batch_behind(db, tables, at_once):
    writer = Writer(db)
    try:
        results = one_batch(
            writer,
            [
                lambda s: (deferring(A, [1, 2, 3], "x")(s), deferring(B, [1], "x")(s))[0],
                deferring(A, list(range(10, 22)), "y"),  # with the others: unnest, not VALUES
                deferring(A, [2], "bad"),  # the same key as the first job's
            ],
        )
    finally:
        writer.stop()
    assert results[:2] == ["x", "y"]
    assert isinstance(results[2], exc.IntegrityError)  # as SQLAlchemy raises it, either way
    assert stored(db, A) == {
        **{i: f"x-ä{i}" for i in (1, 2, 3)},
        **{i: f"y-ä{i}" for i in range(10, 22)},
    }
    assert stored(db, B) == {1: "x-ä1"}
    # The holding job, then the batch, which failed as a whole, then each job alone; on
    # PostgreSQL each of those transactions was one statement.
    if db.is_sqlite:
        assert at_once == [False] * 5
    else:
        assert at_once == [False, "raised", True, True, "raised"]


def test_a_job_that_uses_the_session_commits_with_the_deferred_rows(db, tables, at_once):
    writer = Writer(db)

    def direct(session):  # type: ignore[no-untyped-def]
        session.execute(text("INSERT INTO writer_probe_b (id, v) VALUES (7, 'direct')"))
        return "direct"

    try:
        results = one_batch(writer, [deferring(A, [1, 2], "d"), direct])
    finally:
        writer.stop()
    assert results == ["d", "direct"]
    assert stored(db, A) == {1: "d-ä1", 2: "d-ä2"}
    assert stored(db, B) == {7: "direct"}
    assert at_once[-1] is False  # one transaction: the statement, the rows, the commit


def test_a_dropped_connection_is_replaced_for_deferred_rows_too(db, tables, at_once):
    from tests.test_server_runtime import _kill

    writer = Writer(db)
    try:
        assert writer.run(deferring(A, [1], "before")) == "before"
        first = writer._conn
        _kill(db, first)
        assert writer.run(deferring(A, [2, 3], "after")) == "after"  # once, on a new one
        assert writer._conn is not first
        assert writer.run(deferring(B, [1], "later")) == "later"
    finally:
        writer.stop()
    assert stored(db, A) == {1: "before-ä1", 2: "after-ä2", 3: "after-ä3"}
    assert stored(db, B) == {1: "later-ä1"}
    if not db.is_sqlite:
        assert at_once[-1] is True


def test_a_coroutine_awaits_its_job_and_one_that_went_away_stops_nothing(db, tables):
    import asyncio

    writer = Writer(db)

    async def main():  # type: ignore[no-untyped-def]
        first = await writer.submit_async(deferring(A, [1], "a"))
        with pytest.raises(exc.IntegrityError):  # the job's error, raised in the coroutine
            await writer.submit_async(deferring(A, [1], "dup"))
        writer.submit_async(deferring(A, [2], "gone")).cancel()  # the client hung up
        return first, await writer.submit_async(deferring(A, [3], "c"))

    try:
        assert asyncio.run(main()) == ("a", "c")
    finally:
        writer.stop()
    # What was handed over is committed, whether or not anyone still waits for it.
    assert stored(db, A) == {1: "a-ä1", 2: "gone-ä2", 3: "c-ä3"}
