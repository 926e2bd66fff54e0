"""Merges, erasures, consent changes and new holdings reach every process's caches
(customer_changes.py): at once in the process that commits them, and through
LISTEN/NOTIFY in the others, which then need not read a cached customer's status on
every decision."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text

from relata import customer_changes, point_reads
from relata.config import Settings
from relata.customer_changes import EVERYONE, MAX_IDS, Listener, parse, payloads
from relata.db import Database
from relata.decisions import service
from relata.decisions.engine import Engine, engine_for
from relata.decisions.schemas import DecisionRequest
from tests.helpers import decision_settings
from tests.test_decisions import grant, person

ONLY_PG = pytest.mark.parametrize("db", ["postgresql"], indirect=True)


@pytest.fixture
def settings(db: Database) -> Settings:
    return decision_settings(db)


@pytest.fixture
def heard(db: Database) -> Iterator[list[set[int] | None]]:
    """What this process's subscribers are told for ``db``."""
    seen: list[set[int] | None] = []
    customer_changes.subscribe(db.engine, seen.append)
    yield seen
    customer_changes.unsubscribe(db.engine, seen.append)


def eventually(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def test_this_process_forgets_when_the_change_commits_and_not_on_a_rollback(db, heard):
    with db.session() as s:
        customer_changes.changed(s, [3, 1, 3])
        assert heard == []  # not before the commit: a reader would cache the old state again
    assert heard == [{1, 3}]
    with pytest.raises(RuntimeError), db.session() as s:
        customer_changes.changed(s, [9])
        raise RuntimeError("rolled back")
    assert heard == [{1, 3}]


@given(st.sets(st.integers(1, 2**62), max_size=3_000))
def test_payloads_carry_every_id_within_the_notify_limit(ids):
    found = payloads(ids)
    assert all(len(p.encode()) < 8_000 for p in found)
    got: set[int] = set()
    for p in found:
        parsed = parse(p)
        assert parsed is not None
        got |= parsed
    assert got == ids


def test_too_many_ids_or_a_strange_payload_mean_everyone():
    assert payloads(set(range(MAX_IDS + 1))) == [EVERYONE]
    assert parse(EVERYONE) is None
    assert parse("12,x") is None


def test_a_customer_read_while_a_change_was_announced_is_not_kept(db, settings):
    cid = person(db, settings)
    engine = Engine(settings)
    engine._changes = Listener(db.engine)  # never started: the test announces by hand
    now = datetime.now(UTC)
    with db.session(write=False) as s:
        mark = engine.changes_mark()
        engine._changes.generation += 1  # an announcement between the status read and now
        assert engine.customer(s, cid, now, mark) is not None
        assert engine.cached() == 0
        assert engine.customer(s, cid, now, engine.changes_mark()) is not None
        assert engine.cached() == 1


@ONLY_PG
def test_a_listener_hears_what_another_process_commits_and_recovers_its_connection(
    db, settings, heard
):
    listener = Listener(db.engine, retry_seconds=0.05)
    listener.start()
    other = Database(db.url)  # another process: its own pool, none of this one's subscribers
    try:
        assert eventually(lambda: listener.live)
        assert heard == [None]  # listening from now: whatever was cached before is forgotten
        with other.session() as s:
            customer_changes.changed(s, [42, 7])
        assert eventually(lambda: {7, 42} in heard)
        generation, forgot_all = listener.generation, heard.count(None)
        with other.engine.begin() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(:pid)"), {"pid": listener._conn.info.backend_pid}
            )
        # Reconnected, and everything forgotten: announcements may have been missed.
        assert eventually(lambda: listener.live and heard.count(None) == forgot_all + 1)
        assert listener.generation > generation
        with other.session() as s:
            customer_changes.changed(s, [5])
        assert eventually(lambda: {5} in heard)
    finally:
        listener.stop()
        other.dispose()
    assert not listener.live


@ONLY_PG
def test_a_cached_customer_merged_or_refused_consent_elsewhere_is_decided_afresh(
    db, settings, monkeypatch
):
    """The server's engine skips the status read for a cached customer while it listens,
    and still sees at once what another process changed."""
    from relata.decisions import offers
    from relata.decisions.schemas import OfferWrite
    from relata.identity import service as identity

    eva, jan = person(db, settings), person(db, settings, "K2", first_name="Jan")
    for cid in (eva, jan):
        grant(db, settings, cid)
    with db.session() as s:
        offers.create_offer(
            s, OfferWrite(key="shoes", name="Shoes", channels=["web"], value=10), settings
        )
    reads: list[object] = []
    real_first = point_reads.PointReads.first
    monkeypatch.setattr(
        point_reads.PointReads, "first", lambda self, *a: reads.append(a) or real_first(self, *a)
    )
    engine = engine_for(db, settings)
    engine.start(db)
    other = Database(db.url)

    def decide(cid: int):  # type: ignore[no-untyped-def]
        with db.session() as s:
            return service.decide(
                s, engine, settings, DecisionRequest(customer_id=cid, channel="web")
            )

    try:
        assert eventually(lambda: engine._changes is not None and engine._changes.live)
        assert [o.key for o in decide(eva).offers] == ["shoes"]
        status_reads = len(reads)
        assert decide(eva).blocked is None
        assert len(reads) == status_reads  # cached and listened for: no status read
        with other.session() as s:  # another process revokes the consent
            from relata.consent import service as consent

            consent.record(s, settings, eva, "personalisation", "web", "revoke", via="api")
        # Consent's cache would have kept the grant for 30 s, the customer's for 30 s more.
        assert eventually(lambda: decide(eva).blocked is not None)
        assert decide(jan).customer_id == jan  # cached now
        with other.session() as s:  # and merges Jan into Eva
            identity.merge_customers(s, eva, jan, "test", settings)
        assert eventually(lambda: decide(jan).customer_id == eva)
    finally:
        engine.stop()
        other.dispose()


def test_merges_unmerges_and_erasures_announce_their_customers(db, settings, heard):
    from relata.consent.erasure import erase
    from relata.identity import service as identity

    eva, jan = person(db, settings), person(db, settings, "K2", first_name="Jan")
    ida, ole = person(db, settings, "K3", first_name="Ida"), person(db, settings, "K4")
    heard.clear()
    with db.session() as s:
        merge_id = identity.merge_customers(s, eva, jan, "test", settings)
    assert {eva, jan} <= set().union(*heard)
    heard.clear()
    with db.session() as s:
        identity.unmerge(s, merge_id, settings)
    assert {eva, jan} <= set().union(*heard)
    heard.clear()
    with db.session() as s:
        identity.merge_many(s, [(ida, ole, "batch")], settings)
    assert {ida, ole} <= set().union(*heard)
    heard.clear()
    with db.session() as s:
        erase(s, eva, settings)
    assert eva in set().union(*heard)


@ONLY_PG
def test_a_contract_signed_through_another_process_is_not_offered_a_moment_later(db, settings):
    """The mortgage signed on Monday: the shop's event reaches one process, the hotline asks
    another, which had the customer cached."""
    from relata.decisions import offers
    from relata.decisions.schemas import OfferWrite
    from relata.events import service as events
    from relata.events.schemas import Track

    eva = person(db, settings)
    grant(db, settings, eva)
    with db.session() as s:
        offers.create_offer(
            s,
            OfferWrite(
                key="mortgage",
                name="Mortgage",
                channels=["web"],
                category="mortgages",
                suppress_held="category",
                value=900,
                max_impressions=None,  # asked again and again below: only holding it stops it
            ),
            settings,
        )
    engine = engine_for(db, settings)
    engine.start(db)
    other = Database(db.url)

    def offered() -> list[str | None]:
        with db.session() as s:
            ask = DecisionRequest(customer_id=eva, channel="web", explain=True)
            found = service.decide(s, engine, settings, ask)
        return [o.key for o in found.offers] or [c.code for c in found.considered or []]

    try:
        assert eventually(lambda: engine._changes is not None and engine._changes.live)
        assert offered() == ["mortgage"]  # and cached
        signed = Track(
            type="track",
            userId="K1",
            event="Contract Signed",
            source="shop",
            properties={"contract_id": "M-1", "product_id": "m-5y", "category": "mortgages"},
        )
        with other.session() as s:
            events.ingest(s, [signed], settings)
        assert eventually(lambda: offered() == ["held"], seconds=3)  # not after the cache's 30 s
    finally:
        engine.stop()
        other.dispose()
