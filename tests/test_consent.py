"""The consent ledger on both databases: writes, the permission check, merges, tokens."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import event, select, update

from relata.config import Settings
from relata.consent import keys, service
from relata.consent.errors import (
    ConsentError,
    CustomerErased,
    CustomerNotFound,
    EntryNotFound,
    TokenGone,
    TokenInvalid,
)
from relata.consent.models import ConsentEntry, ConsentToken
from relata.consent.tokens import Unsubscribe, sign_unsubscribe
from relata.db import utcnow
from relata.identity import service as identity
from relata.profiles.models import Customer
from tests.helpers import make_source, put, rec


def two_customers(db, settings) -> tuple[int, int]:
    make_source(db, "shop", trust=80)
    done = put(
        db,
        settings,
        "shop",
        rec("K1", first_name="Anna", last_name="Schulz", email="anna@example.de"),
        rec("K2", first_name="Anna", last_name="Schulz", email="anna.s@example.de"),
    )
    return done.customer_of["K1"], done.customer_of["K2"]


def grant(session, settings, cid, action="grant", purpose="marketing", channel="email", **kw):
    return service.record(session, settings, cid, purpose, channel, action, via="api", **kw)


def may(db, settings, cid, purpose="marketing", channel="email") -> bool:
    with db.session(write=False) as session:
        return service.may_use(session, cid, purpose, channel, settings)


def test_the_latest_entry_decides_and_a_revocation_wins_a_tie(db, settings):
    a, _ = two_customers(db, settings)
    assert not may(db, settings, a)  # nothing recorded: no
    t = datetime(2026, 3, 1, 12, tzinfo=UTC)
    with db.session() as session:
        grant(session, settings, a, occurred_at=t)
    assert may(db, settings, a)
    with db.session() as session:
        grant(session, settings, a, "revoke", occurred_at=t)  # the same instant
        grant(session, settings, a, channel="sms", occurred_at=t)
    assert not may(db, settings, a)
    assert may(db, settings, a, channel="sms")
    with db.session() as session:
        # An older grant arriving late (a backdated import, say) does not undo it.
        grant(session, settings, a, occurred_at=t - timedelta(days=1))
    assert not may(db, settings, a)


def test_a_grant_dated_in_the_future_counts_as_now(db, settings):
    a, _ = two_customers(db, settings)
    with db.session() as session:
        entry = grant(session, settings, a, occurred_at=utcnow() + timedelta(days=365))
        assert entry.occurred_at <= utcnow()
        grant(session, settings, a, "revoke")
    assert not may(db, settings, a)


@pytest.mark.parametrize(
    ("purpose", "channel", "message"),
    [("spam", "email", "unknown purpose 'spam'"), ("marketing", "fax", "unknown channel 'fax'")],
)
def test_unknown_purposes_and_channels_are_refused(db, settings, purpose, channel, message):
    a, _ = two_customers(db, settings)
    with db.session() as session, pytest.raises(ConsentError, match=message):
        grant(session, settings, a, purpose=purpose, channel=channel)
    with db.session() as session, pytest.raises(ConsentError, match=message):
        service.may_use(session, a, purpose, channel, settings)


def test_the_purposes_are_configurable(db):
    settings = Settings(database_url=db.url, consent_purposes=["newsletter", "surveys"])
    a, _ = two_customers(db, settings)
    with db.session() as session:
        grant(session, settings, a, purpose="surveys", channel="phone")
    assert may(db, settings, a, "surveys", "phone")
    with pytest.raises(ValueError, match="distinct names"):
        Settings(consent_purposes=["Bad Name"])


def test_unknown_customers_are_refused(db, settings):
    with db.session() as session, pytest.raises(CustomerNotFound):
        grant(session, settings, 999)
    assert not may(db, settings, 999)


def test_an_entry_of_another_customer_is_not_found(db, settings):
    a, b = two_customers(db, settings)
    with db.session() as session:
        mine = grant(session, settings, a).id
    with db.session(write=False) as session:
        assert service.entry(session, a, mine).customer_id == a
        with pytest.raises(EntryNotFound):
            service.entry(session, b, mine)


# --- merges ---------------------------------------------------------------------------------


def test_after_a_merge_a_revocation_on_either_side_wins_and_unmerge_restores_both(db, settings):
    a, b = two_customers(db, settings)
    t = datetime(2026, 3, 1, tzinfo=UTC)
    with db.session() as session:
        grant(session, settings, b, "revoke", occurred_at=t)
        # A's grant is newer, but A knew nothing of B's revocation.
        grant(session, settings, a, occurred_at=t + timedelta(days=10))
        grant(session, settings, a, channel="post", occurred_at=t)
    assert may(db, settings, a) and not may(db, settings, b)
    with db.session() as session:
        merge_id = identity.merge(session, a, b, "test")
    assert not may(db, settings, a)  # conservative: B's revocation wins
    assert not may(db, settings, b)  # the merged-away id answers for the survivor
    assert may(db, settings, a, channel="post")  # B said nothing about post
    with db.session() as session:
        identity.unmerge(session, merge_id, settings)
    assert may(db, settings, a)
    assert not may(db, settings, b)


def test_a_grant_given_after_the_merge_speaks_for_both_sides_until_unmerged(db, settings):
    a, b = two_customers(db, settings)
    with db.session() as session:
        grant(session, settings, b, "revoke", occurred_at=utcnow() - timedelta(days=2))
        merge_id = identity.merge(session, a, b, "test")
    with db.session() as session:
        grant(session, settings, a)  # the merged person, asked again
    assert may(db, settings, a)
    with db.session() as session:
        identity.unmerge(session, merge_id, settings)
    # The new grant was recorded for the survivor: it stays there; B's revocation goes back.
    assert may(db, settings, a)
    assert not may(db, settings, b)


# --- the cache ------------------------------------------------------------------------------


class Queries:
    def __init__(self, db) -> None:
        self.count = 0
        event.listen(db.engine, "before_cursor_execute", self._seen)

    def _seen(self, *args) -> None:
        self.count += 1


def test_the_check_is_cached_and_every_write_in_this_process_invalidates_it(db, settings):
    a, _ = two_customers(db, settings)
    with db.session() as session:
        grant(session, settings, a)
    assert may(db, settings, a)
    queries = Queries(db)
    with db.session(write=False) as session:
        for _ in range(50):
            assert service.may_use(session, a, "marketing", "email", settings)
    assert queries.count <= 1  # at most the session's BEGIN: no read of the ledger
    with db.session() as session:
        grant(session, settings, a, "revoke")
    assert not may(db, settings, a)


def test_a_rolled_back_write_leaves_no_answer_behind(db, settings):
    a, _ = two_customers(db, settings)
    with pytest.raises(RuntimeError), db.session() as session:
        grant(session, settings, a)
        assert service.may_use(session, a, "marketing", "email", settings)  # seen inside
        raise RuntimeError("the request failed")
    assert not may(db, settings, a)


def test_without_a_cache_every_check_reads_the_ledger(db):
    settings = Settings(database_url=db.url, consent_cache_size=0)
    a, _ = two_customers(db, settings)
    with db.session() as session:
        grant(session, settings, a)
    with db.session() as session:
        # Another process's write: nothing here invalidated anything.
        session.execute(update(ConsentEntry).values(action="revoke"))
    assert not may(db, settings, a)


# --- double opt-in --------------------------------------------------------------------------


def test_double_opt_in_is_pending_until_confirmed_once(db, settings):
    a, _ = two_customers(db, settings)
    with db.session() as session:
        opt_in = service.request_opt_in(session, settings, a, "marketing", text_version="NL-3")
        token = opt_in.token
    with db.session(write=False) as session:
        assert service.state_of(session, a, "marketing", "email", settings).status == "pending"
        stored = session.scalar(select(ConsentToken))
        assert token not in (stored.token_hash, *map(str, stored.__dict__.values()))
    assert not may(db, settings, a)
    with db.session() as session:
        confirmed = service.confirm(session, settings, token, {"ip": "192.0.2.1"})
        assert confirmed.text_version == "NL-3"
        assert confirmed.evidence["ip"] == "192.0.2.1"
    assert may(db, settings, a)
    with db.session() as session, pytest.raises(TokenGone) as gone:
        service.confirm(session, settings, token)
    assert gone.value.reason == "used"


def test_an_expired_confirmation_does_not_confirm(db, settings):
    a, _ = two_customers(db, settings)
    with db.session() as session:
        token = service.request_opt_in(session, settings, a, "marketing").token
        session.execute(update(ConsentToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    with db.session() as session, pytest.raises(TokenGone) as gone:
        service.confirm(session, settings, token)
    assert gone.value.reason == "expired"
    assert not may(db, settings, a)


@pytest.mark.parametrize("token", ["", "x" * 43, "short", "a/b", "A" * 42 + "!", "A" * 44])
def test_wrong_confirmation_tokens_are_unknown(db, settings, token):
    two_customers(db, settings)
    with db.session() as session, pytest.raises(TokenInvalid):
        service.confirm(session, settings, token)


def test_a_confirmation_follows_its_customer_through_a_merge(db, settings):
    a, b = two_customers(db, settings)
    with db.session() as session:
        token = service.request_opt_in(session, settings, b, "marketing").token
        merge_id = identity.merge(session, a, b, "test")
    with db.session() as session:
        service.confirm(session, settings, token)
    assert may(db, settings, a)
    with db.session() as session:
        identity.unmerge(session, merge_id, settings)
    # The confirmation was B's: it goes back with B.
    assert may(db, settings, b) and not may(db, settings, a)


# --- unsubscribe links ----------------------------------------------------------------------


def test_an_unsubscribe_link_revokes_once_and_keeps_working(db, settings):
    a, _ = two_customers(db, settings)
    with db.session() as session:
        grant(session, settings, a)
        token = service.unsubscribe_token(session, settings, a, "marketing", "email")
    with db.session() as session:
        claim, entry = service.unsubscribe(session, settings, token, {"ip": "192.0.2.9"})
        assert (claim.customer_id, entry.action, entry.via) == (a, "revoke", "link")
    assert not may(db, settings, a)
    with db.session() as session:
        _, again = service.unsubscribe(session, settings, token)
        assert again is None  # nothing new to say
        # A later grant, then the same old link: it revokes again.
        grant(session, settings, a)
    with db.session() as session:
        assert service.unsubscribe(session, settings, token)[1] is not None
    assert not may(db, settings, a)


def test_forged_or_altered_unsubscribe_links_are_unknown(db, settings):
    a, b = two_customers(db, settings)
    with db.session() as session:
        token = service.unsubscribe_token(session, settings, a, "marketing", "email")
        other_key = sign_unsubscribe(b"k" * 32, Unsubscribe(b, "marketing", "email", date.today()))
    body, tag = token.split(".")
    altered = body[:-1] + ("A" if body[-1] != "A" else "B") + "." + tag
    for bad in (other_key, altered, token + "x", "nonsense", body):
        with db.session() as session, pytest.raises(TokenInvalid):
            service.unsubscribe(session, settings, bad)


def test_an_old_unsubscribe_link_expires(db):
    settings = Settings(database_url=db.url, unsubscribe_link_days=30)
    a, _ = two_customers(db, settings)
    with db.session() as session:
        key = keys.key(session, keys.TOKEN_KEY, None)
    old = sign_unsubscribe(
        key, Unsubscribe(a, "marketing", "email", date.today() - timedelta(days=31))
    )
    with db.session() as session, pytest.raises(TokenGone):
        service.unsubscribe(session, settings, old)


def test_a_link_sent_to_a_customer_later_merged_away_revokes_the_survivor(db, settings):
    a, b = two_customers(db, settings)
    with db.session() as session:
        grant(session, settings, a)
        grant(session, settings, b)
        token = service.unsubscribe_token(session, settings, b, "marketing", "email")
        merge_id = identity.merge(session, a, b, "test")
    with db.session() as session:
        service.unsubscribe(session, settings, token)
    assert not may(db, settings, a)
    with db.session() as session:
        identity.unmerge(session, merge_id, settings)
    assert may(db, settings, a) and not may(db, settings, b)


# --- erased customers -----------------------------------------------------------------------


def test_an_erased_customer_may_be_used_for_nothing_and_takes_no_entries(db, settings):
    a, _ = two_customers(db, settings)
    with db.session() as session:
        grant(session, settings, a)
        session.execute(update(Customer).where(Customer.id == a).values(status="erased"))
    with db.session() as session:
        with pytest.raises(CustomerErased):
            grant(session, settings, a)
        assert not service.may_use(session, a, "marketing", "email", settings)


# --- the reads the hot path makes use indexes -----------------------------------------------


def test_the_ledger_and_tombstone_reads_use_their_indexes(db):
    from sqlalchemy import text

    def plan(sql: str) -> str:
        with db.session(write=False) as s:
            if db.is_sqlite:
                return "\n".join(str(r[-1]) for r in s.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
            s.execute(text("SET LOCAL enable_seqscan = off"))  # tiny tables: plan for scale
            return "\n".join(r[0] for r in s.execute(text(f"EXPLAIN {sql}")))

    ledger = plan("SELECT purpose, action FROM consent_entries WHERE customer_id = 7")
    assert "ix_consent_entries_customer_id_id" in ledger, ledger
    tombstones = plan("SELECT digest FROM erasure_tombstones WHERE digest IN ('a', 'b')")
    assert "uq_erasure_tombstones_digest" in tombstones or "autoindex" in tombstones, tombstones
