"""Matching against the database (SQLite and PostgreSQL): batch dedupe, merges through the
merge log, the review queue, rejected pairs, real-time matching and exact unmerge."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select

from relata.config import Settings
from relata.db import Base, Database
from relata.events.models import Event
from relata.identity import review
from relata.identity import service as identity
from relata.identity.matching import batch, realtime, store
from relata.identity.matching.features import features
from relata.identity.matching.models import MatchKey, MatchRejection, MatchReview
from relata.identity.models import Identifier, Merge
from relata.ingest.models import SourceRecord
from relata.profiles.models import Customer
from tests.helpers import make_source, put, rec
from tests.matching_helpers import trained

HOME = {"street": "Lindenweg", "house_number": "3", "postcode": "50667", "city": "Köln"}
JUERGEN = {
    "first_name": "Jürgen",
    "last_name": "Müller",
    "birth_date": "1970-03-07",
    "street": "Hauptstr.",
    "house_number": "5a",
    "postcode": "10115",
    "city": "Berlin",
}
JUERGEN_AGAIN = {
    "first_name": "Juergen",
    "last_name": "Mueller",
    "birth_date": "1970-03-07",
    "street": "Hauptstraße",
    "house_number": "5",
    "postcode": "10115",
    "city": "Berlin",
}
TWINS = (
    {"first_name": "Lena", "last_name": "Schmidt", "birth_date": "1990-04-02", **HOME},
    {"first_name": "Paula", "last_name": "Schmidt", "birth_date": "1990-04-02", **HOME},
)
FATHER_SON = (
    {"first_name": "Thomas", "last_name": "Weber", "birth_date": "1961-08-19", **HOME},
    {"first_name": "Thomas", "last_name": "Weber", "birth_date": "1992-01-30", **HOME},
)
# Only the name in common: the review band, with the thresholds set below.
ANNETT = ({"first_name": "Annett", "last_name": "Striebitz"}, {
    "first_name": "Annett", "last_name": "Striebitz", "email": "annett.s@gmx.de"})  # fmt: skip


def weight(a: dict[str, Any], b: dict[str, Any]) -> float:
    """As a batch run over this file's people scores the pair (their term frequencies)."""
    from dataclasses import replace

    from relata.identity.matching import engine, rows
    from relata.identity.matching.scoring import score

    people = [JUERGEN, JUERGEN_AGAIN, *TWINS, *FATHER_SON, *ANNETT]
    built = rows.build(enumerate(people, start=1))
    tf = engine.term_frequencies(engine.arrow_table(built.table_columns()))
    return score(features(a), features(b), replace(trained().params, tf=tf)).weight


@pytest.fixture
def matching(db: Database) -> Settings:
    """A trained model in the database, and thresholds around this file's pairs."""
    with db.session() as session:
        store.save_model(session, trained(), "duckdb")
    names_only = weight(*ANNETT)
    same = weight(JUERGEN, JUERGEN_AGAIN)
    assert names_only < same  # the test below needs the two in different bands
    return Settings(
        database_url=db.url,
        match_auto_merge_weight=(names_only + same) / 2,
        match_review_weight=names_only - 1,
    )


def _people(db: Database, settings: Settings) -> dict[str, int]:
    """Each on a source record of its own, linked to no one by an identifier."""
    make_source(db, "shop")
    make_source(db, "pos")
    rows = {
        "juergen": ("shop", JUERGEN),
        "juergen2": ("pos", JUERGEN_AGAIN),
        "lena": ("shop", TWINS[0]),
        "paula": ("pos", TWINS[1]),
        "father": ("shop", FATHER_SON[0]),
        "son": ("pos", FATHER_SON[1]),
        "annett": ("shop", ANNETT[0]),
        "annett2": ("pos", ANNETT[1]),
    }
    found = {}
    for key, (source, data) in rows.items():
        found[key] = put(db, settings, source, rec(key, **data)).customer_of[key]
    assert len(set(found.values())) == len(found)
    return found


def _root(db: Database, cid: int) -> int:
    with db.session(write=False) as session:
        return identity.resolve_id(session, cid)


def test_the_migration_creates_exactly_the_matching_models(db: Database) -> None:
    ours = {"match_models", "match_reviews", "match_rejections", "match_keys"}
    with db.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert [d for d in diff if any(name in str(d) for name in ours)] == []


def test_dedupe_merges_duplicates_keeps_twins_and_fathers_apart_and_queues_the_rest(
    db: Database, matching: Settings
) -> None:
    ids = _people(db, matching)
    summary = batch.dedupe(db, matching)
    assert _root(db, ids["juergen2"]) == _root(db, ids["juergen"]) == ids["juergen"]
    for a, b in (("lena", "paula"), ("father", "son"), ("annett", "annett2")):
        assert _root(db, ids[a]) != _root(db, ids[b]), (a, b)
    with db.session(write=False) as session:
        queued = review.list_reviews(session)
        merge = session.scalars(select(Merge)).one()
        keys = session.scalar(select(func.count()).select_from(MatchKey))
    assert [(r.customer_a_id, r.customer_b_id) for r in queued] == [(ids["annett"], ids["annett2"])]
    assert queued[0].explanation["steps"][0]["comparison"] == "prior"
    assert merge.reason.startswith("matching: weight")
    assert (merge.survivor_id, merge.merged_id) == (ids["juergen"], ids["juergen2"])
    assert summary.merged == 1 and summary.queued == 1 and summary.compared >= 4
    assert keys and summary.keys == keys
    # A second run finds nothing new: the merge is done, the pair waits for its decision.
    again = batch.dedupe(db, matching)
    assert again.merged == 0 and again.queued == 1


def test_after_a_batch_merge_real_time_matching_finds_the_survivor(
    db: Database, matching: Settings
) -> None:
    # The batch run writes its keys while it compares, before it merges: the merged
    # customer's keys still name it, and real-time matching must resolve them.
    ids = _people(db, matching)
    batch.dedupe(db, matching)
    assert _root(db, ids["juergen2"]) == ids["juergen"]
    third = put(db, matching, "pos", rec("j3", **JUERGEN_AGAIN)).customer_of["j3"]
    with db.session(write=False) as session:
        found = store.candidates(session, features(JUERGEN_AGAIN), 10)
    assert ids["juergen2"] in found  # a key of the merged customer
    with db.session() as session:
        result = realtime.match_new(session, [third], matching)
    assert [(s, m) for s, m, _ in result.merged] == [(ids["juergen"], third)]
    assert _root(db, third) == ids["juergen"]


def test_a_rejected_pair_is_never_proposed_or_merged_again(
    db: Database, matching: Settings
) -> None:
    ids = _people(db, matching)
    batch.dedupe(db, matching)
    with db.session() as session:
        item = review.list_reviews(session)[0]
        review.reject(session, item.id)
    # Even with thresholds that would now merge it outright.
    eager = matching.model_copy(update={"match_auto_merge_weight": matching.match_review_weight})
    summary = batch.dedupe(db, eager)
    assert _root(db, ids["annett"]) != _root(db, ids["annett2"])
    assert summary.queued == 0
    with db.session() as session:
        assert review.get(session, item.id).status == "rejected"
        with pytest.raises(review.ReviewError, match="not open"):
            review.accept(session, item.id, matching)


def test_accepting_merges_through_the_log_and_unmerge_makes_it_stick(
    db: Database, matching: Settings
) -> None:
    ids = _people(db, matching)
    batch.dedupe(db, matching)
    with db.session() as session:
        item = review.list_reviews(session)[0]
        done = review.accept(session, item.id, matching)
        merge_id = done.merge_id
    assert merge_id is not None
    assert _root(db, ids["annett2"]) == ids["annett"]
    with db.session() as session:
        identity.unmerge(session, merge_id, matching)
        rejected = session.scalars(select(MatchRejection)).all()
    assert [(r.customer_a_id, r.customer_b_id) for r in rejected] == [
        (ids["annett"], ids["annett2"])
    ]
    eager = matching.model_copy(update={"match_auto_merge_weight": matching.match_review_weight})
    batch.dedupe(db, eager)
    assert _root(db, ids["annett2"]) == ids["annett2"]


def test_review_errors_say_what_is_wrong(db: Database, matching: Settings) -> None:
    with db.session() as session, pytest.raises(review.ReviewNotFound):
        review.accept(session, 999, matching)
    with db.session() as session, pytest.raises(review.ReviewError, match="unknown status"):
        review.list_reviews(session, "maybe")


def test_dedupe_without_a_model_says_to_train_first(db: Database) -> None:
    with pytest.raises(store.NoModel, match="relata dedupe train"):
        batch.dedupe(db, Settings(database_url=db.url))


def test_train_stores_a_new_version_each_time(db: Database) -> None:
    settings = Settings(database_url=db.url, match_u_max_pairs=50_000)
    make_source(db, "shop")
    from tests.matching_helpers import records

    put(db, settings, "shop", *(rec(f"r{i}", **d) for i, (_, d) in enumerate(records(150))))
    first = batch.train(db, settings)
    second = batch.train(db, settings)
    assert (first.version, second.version) == (1, 2)
    with db.session(write=False) as session:
        model, params = store.require_model(session)
    assert model.version == 2 and model.trained_at is not None
    assert params.levels and model.splink["comparisons"]


def test_explain_pair_is_a_waterfall_that_adds_up(db: Database, matching: Settings) -> None:
    ids = _people(db, matching)
    w, steps = batch.explain_pair(db, ids["juergen"], ids["juergen2"])
    assert sum(s.weight + s.tf_adjustment for s in steps) == pytest.approx(w)
    assert {s.comparison for s in steps} >= {"prior", "forename", "surname", "dob", "address"}
    with pytest.raises(store.UnknownCustomer):
        batch.explain_pair(db, ids["juergen"], 10**9)


# --- merges ------------------------------------------------------------------------------------


def _state(db: Database) -> dict[str, Any]:
    with db.session(write=False) as session:
        return {
            "customers": sorted(
                session.execute(
                    select(Customer.id, Customer.status, Customer.first_name, Customer.email)
                ).all()
            ),
            "records": sorted(
                session.execute(select(SourceRecord.id, SourceRecord.customer_id)).all()
            ),
            "identifiers": sorted(
                session.execute(select(Identifier.id, Identifier.customer_id)).all()
            ),
            "events": sorted(
                session.execute(
                    select(Event.id, Event.customer_id).where(Event.type != "system")
                ).all()
            ),
        }


def test_merge_many_is_many_merges_and_each_unmerges_exactly(db: Database) -> None:
    settings = Settings(database_url=db.url)
    make_source(db, "shop")
    ids = [
        put(
            db, settings, "shop", rec(f"k{i}", first_name=f"Name{i}", email=f"p{i}@x.de")
        ).customer_of[f"k{i}"]
        for i in range(5)
    ]
    before = _state(db)
    with db.session() as session:
        logs = identity.merge_many(
            session,
            [(ids[0], ids[1], "test"), (ids[0], ids[2], "test"), (ids[3], ids[4], "t")],
            settings,
        )
    assert len(logs) == 3
    with db.session(write=False) as session:
        assert session.get(Customer, ids[1]).merged_into_id == ids[0]
        owners = (
            session.execute(select(SourceRecord.customer_id).order_by(SourceRecord.id))
            .scalars()
            .all()
        )
        merged_events = session.scalars(
            select(Event.message_id).where(Event.name == "Customer Merged")
        ).all()
    assert owners == [ids[0], ids[0], ids[0], ids[3], ids[3]]
    assert sorted(merged_events) == sorted(f"merge:{i}" for i in logs)
    with db.session() as session:
        for log_id in logs:
            identity.unmerge(session, log_id, settings)
    assert _state(db) == {**before, "customers": before["customers"]}
    with db.session() as session, pytest.raises(identity.MergeError):
        identity.merge_many(session, [(ids[0], ids[1], "x"), (ids[2], ids[1], "x")], settings)


def test_unmerge_gives_the_restored_customer_what_arrived_for_it_after_the_merge(
    db: Database,
) -> None:
    settings = Settings(database_url=db.url)
    make_source(db, "shop")
    make_source(db, "web")
    a = put(db, settings, "shop", rec("a", first_name="Anna", email="anna@x.de")).customer_of["a"]
    b = put(db, settings, "shop", rec("b", first_name="Berta", email="berta@x.de")).customer_of["b"]
    with db.session() as session:
        merge_id = identity.merge_customers(session, a, b, "test", settings)
    # After the merge: a record with Berta's e-mail (so it joins the merged customer) and one
    # with an e-mail nobody had.
    late = put(db, settings, "web", rec("late", first_name="Berta", email="berta@x.de"))
    other = put(db, settings, "web", rec("new", first_name="Anna", email="anna2@x.de"))
    assert late.customer_of["late"] == a
    with db.session() as session:
        identity.unmerge(session, merge_id, settings)
    with db.session(write=False) as session:
        owner = dict(
            session.execute(select(SourceRecord.source_key, SourceRecord.customer_id)).all()
        )
        late_ids = session.scalars(
            select(Identifier.customer_id).where(Identifier.value == "berta@x.de")
        ).all()
        berta = session.get(Customer, b)
    assert owner["late"] == b and set(late_ids) == {b}
    assert owner["a"] == a and owner["b"] == b
    assert owner["new"] == other.customer_of["new"]
    assert berta is not None and berta.status == "active" and berta.first_name == "Berta"


# --- real time -----------------------------------------------------------------------------


def test_real_time_merges_a_new_duplicate_and_queues_the_review_band(
    db: Database, matching: Settings
) -> None:
    make_source(db, "shop")
    make_source(db, "pos")
    first = put(db, matching, "shop", rec("j", **JUERGEN)).customer_of["j"]
    annett = put(db, matching, "shop", rec("a", **ANNETT[0])).customer_of["a"]
    twin = put(db, matching, "shop", rec("t", **TWINS[0])).customer_of["t"]
    batch.dedupe(db, matching)  # indexes the blocking keys
    new = put(db, matching, "pos", rec("j2", **JUERGEN_AGAIN), rec("a2", **ANNETT[1]),
              rec("t2", **TWINS[1]))  # fmt: skip
    assert set(new.born) == {new.customer_of[k] for k in ("j2", "a2", "t2")}
    with db.session() as session:
        result = realtime.match_new(session, new.born, matching)
    assert [(s, m) for s, m, _ in result.merged] == [(first, new.customer_of["j2"])]
    assert [(a, b) for a, b, _ in result.queued] == [(annett, new.customer_of["a2"])]
    assert _root(db, new.customer_of["t2"]) != _root(db, twin)
    with db.session(write=False) as session:
        assert session.scalars(select(Merge.reason)).one().startswith("matching (real time)")
        assert review.list_reviews(session)[0].customer_b_id == new.customer_of["a2"]
        # The new customers' keys are indexed: the next record finds them.
        assert store.candidates(session, features(TWINS[1]), 10) >= {new.customer_of["t2"]}


def test_real_time_without_a_model_does_nothing(db: Database) -> None:
    settings = Settings(database_url=db.url)
    make_source(db, "shop")
    born = put(db, settings, "shop", rec("j", **JUERGEN)).born
    with db.session() as session:
        result = realtime.match_new(session, born, settings)
    assert result.model_version is None and result.compared == 0


def test_real_time_never_merges_a_rejected_pair(db: Database, matching: Settings) -> None:
    make_source(db, "shop")
    make_source(db, "pos")
    first = put(db, matching, "shop", rec("j", **JUERGEN)).customer_of["j"]
    batch.dedupe(db, matching)
    second = put(db, matching, "pos", rec("j2", **JUERGEN_AGAIN)).customer_of["j2"]
    with db.session() as session:
        store.reject(session, first, second, "test")
        result = realtime.match_new(session, [second], matching)
    assert result.merged == [] and result.queued == [] and result.compared == 1
    with db.session(write=False) as session:
        assert session.scalar(select(func.count()).select_from(MatchReview)) == 0


def test_real_time_candidates_are_index_seeks_not_a_scan(db: Database) -> None:
    from tests.test_query_plans import _compiled, _plan

    f = features(JUERGEN)
    from relata.identity.matching.features import key_hash, keys_of

    stmt = (
        select(MatchKey.customer_id)
        .where(MatchKey.key_hash.in_([key_hash(k) for k in keys_of(f)]))
        .limit(300)
    )
    plan = _plan(db, *_compiled(db, stmt))
    if db.is_sqlite:
        assert "SEARCH match_keys USING PRIMARY KEY" in plan or "USING COVERING" in plan, plan
        assert "SCAN" not in plan, plan
    else:
        assert "pk_match_keys" in plan and "Seq Scan" not in plan, plan


def test_a_person_identifying_through_the_event_api_is_matched_at_once(
    db: Database, matching: Settings
) -> None:
    from relata.events import service as events
    from relata.events.api import parse

    make_source(db, "shop")
    make_source(db, "web", "web")
    first = put(db, matching, "shop", rec("j", **JUERGEN)).customer_of["j"]
    batch.dedupe(db, matching)  # indexes the blocking keys
    traits = {
        "firstName": "Juergen",
        "lastName": "Mueller",
        "birthday": "1970-03-07",
        "address": {"street": "Hauptstraße 5", "postalCode": "10115", "city": "Berlin"},
    }
    message = {"type": "identify", "userId": "web-77", "traits": traits, "messageId": "m1"}
    with db.session() as session:
        done = events.ingest(session, parse([message]).batch, matching, "web")
    # No identifier links the web user to the till's Jürgen: the model does.
    assert done.customers == [first]
    with db.session(write=False) as session:
        assert session.scalars(select(Merge.reason)).one().startswith("matching (real time)")
