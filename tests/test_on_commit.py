"""db.on_commit: work for after a commit, run only for a transaction that committed, by a
plain session's listeners or by the group-commit writer itself."""

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from relata.db import on_commit
from relata.writer import Writer


def test_runs_after_the_commit_and_never_after_a_rollback(db):
    ran: list[str] = []
    with db.session() as s:
        on_commit(s, lambda: ran.append("first"))
        assert ran == []
    assert ran == ["first"]

    with pytest.raises(RuntimeError), db.session() as s:
        on_commit(s, lambda: ran.append("rolled back"))
        raise RuntimeError("the transaction fails")
    assert ran == ["first"]

    with db.session() as s:  # one failing does not stop the others nor undo the commit
        on_commit(s, lambda: 1 / 0)
        on_commit(s, lambda: ran.append("after a failing one"))
    assert ran == ["first", "after a failing one"]


def test_a_session_runs_each_callback_once_across_its_transactions(db):
    ran: list[str] = []
    session = Session(db.engine)
    try:
        session.execute(text("SELECT 1"))
        on_commit(session, lambda: ran.append("a"))
        session.rollback()  # dropped with its transaction
        session.execute(text("SELECT 1"))
        with session.begin_nested():  # a savepoint rolled back keeps the transaction's own
            on_commit(session, lambda: ran.append("b"))
        savepoint = session.begin_nested()
        savepoint.rollback()
        session.commit()
        session.commit()  # a later commit does not run it again
        on_commit(session, lambda: ran.append("c"))
        session.commit()
    finally:
        session.close()
    assert ran == ["b", "c"]


def test_the_writer_runs_them_after_its_commit_and_before_answering(db):
    writer = Writer(db)
    seen: list[object] = []

    def job(session):
        session.execute(text("SELECT 1"))
        on_commit(session, lambda: seen.append("committed"))
        return "done"

    def bad_callback(session):
        on_commit(session, lambda: 1 / 0)
        return "still done"

    def failing(session):
        on_commit(session, lambda: seen.append("must not run"))
        raise ValueError("bad job")

    try:
        assert writer.run(job) == "done"
        assert seen == ["committed"]  # already when the result is handed back
        assert writer.run(bad_callback) == "still done"  # committed is committed
        with pytest.raises(ValueError):
            writer.run(failing)
        assert writer.run(job) == "done"
    finally:
        writer.stop()
    assert seen == ["committed", "committed"]
