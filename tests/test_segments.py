"""Segments on both databases: versions, references and cycles, counts, batch and live
membership with their timeline events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import delete, select, update

from relata.config import Settings
from relata.events import service as events
from relata.events.models import Event
from relata.events.schemas import Identify, Track
from relata.identity.service import merge_customers
from relata.segments import loader, membership, service
from relata.segments.loader import Needs
from relata.segments.models import SegmentMembership
from relata.segments.profile import Profile
from relata.segments.rules import RuleError, parse, to_json
from tests.helpers import make_source, put, rec
from tests.test_rules_agreement import datasets, store
from tests.test_rules_strategies import EVENT_NAMES, NOWS, moment_pool

NOW = datetime(2025, 7, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def settings(db) -> Settings:
    return Settings(database_url=db.url)


def people(db, settings) -> dict[str, int]:
    """Anna (f, 1985, Munich), Berta (f, 1999, Berlin), Carl (m, 1970, Munich)."""
    make_source(db, "shop", trust=80)
    done = put(
        db,
        settings,
        "shop",
        rec("A", first_name="Anna", last_name="A", gender="f", birth_date="1985-03-01",
            postcode="80331", city="München", email="anna@example.de"),
        rec("B", first_name="Berta", last_name="B", gender="f", birth_date="1999-01-01",
            postcode="10115", city="Berlin", email="berta@example.de"),
        rec("C", first_name="Carl", last_name="C", gender="m", birth_date="1970-05-05",
            postcode="80333", city="München", email="carl@example.de"),
    )  # fmt: skip
    return {k: done.customer_of[k] for k in "ABC"}


def track(db, settings, user: str, event: str, at: datetime, **props) -> list[int]:
    message = Track(type="track", userId=user, event=event, properties=props, timestamp=at)
    with db.session() as session:
        return events.ingest(session, [message], settings, "shop").customers


def save(db, name: str, text: str, description: str = "") -> service.SegmentInfo:
    with db.session() as session:
        return service.create(session, name, service.read_rule(session, text), description)


def timeline(db, customer_id: int) -> list[tuple[str, str]]:
    with db.session(write=False) as session:
        rows = session.execute(
            select(Event.name, Event.properties)
            .where(Event.customer_id == customer_id, Event.type == "system")
            .order_by(Event.id)
        )
        return [(name, props["segment"]) for name, props in rows if name.startswith("Segment")]


def test_the_migration_creates_the_tables_as_the_models_describe_them(db):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from relata.db import Base

    ours = {"segments", "segment_versions", "segment_memberships", "ix_events_name_occurred_at"}
    with db.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diffs if ours & set(_tables(d))] == []


def _tables(diff: object) -> list[str]:
    """Table names mentioned anywhere in one of alembic's differences."""
    found = []
    for part in diff if isinstance(diff, tuple | list) else [diff]:
        if isinstance(part, tuple | list):
            found += _tables(part)
        table = getattr(part, "table", None)
        found.append(getattr(table, "name", None) or getattr(part, "name", None) or str(part))
    return found


# --- definitions ---------------------------------------------------------------------------


def test_every_edit_is_a_version_and_an_unchanged_edit_is_none(db):
    first = save(db, "Münchner", 'city = "München"', "Kunden aus München")
    assert (first.version, first.text) == (1, 'city = "München"')
    with db.session() as session:
        same = service.update(session, "Münchner", parse('city = "München"'))
        assert same.version == 1
        second = service.update(session, "Münchner", parse('postcode starts with "8"'))
        third = service.update(session, "Münchner", description="PLZ 8…")
    assert (second.version, third.version) == (2, 3)
    with db.session(write=False) as session:
        history = service.versions(session, "Münchner")
        listed = service.list_segments(session)
    assert [(v.version, v.text, v.description) for v in history] == [
        (3, 'postcode starts with "8"', "PLZ 8…"),
        (2, 'postcode starts with "8"', "Kunden aus München"),
        (1, 'city = "München"', "Kunden aus München"),
    ]
    assert [s.name for s in listed] == ["Münchner"]
    assert history[0].rule == {"field": "postcode", "op": "starts with", "value": "8"}


@pytest.mark.parametrize("name", ["", " x", "x ", "a/b", "x" * 65, "drop;table"])
def test_bad_names_are_refused(db, name):
    with db.session() as session, pytest.raises(service.SegmentError):
        service.create(session, name, parse("age > 1"))


def test_names_are_unique_and_unknown_ones_are_not_found(db):
    save(db, "vip", "age > 1")
    with db.session() as session:
        with pytest.raises(service.SegmentExists):
            service.create(session, "vip", parse("age > 2"))
        with pytest.raises(service.SegmentNotFound):
            service.get(session, "nope")
        with pytest.raises(service.SegmentNotFound):
            service.update(session, "nope", parse("age > 2"))


def test_a_rule_is_checked_when_saved_not_when_it_runs(db):
    with db.session() as session:
        with pytest.raises(RuleError, match="unknown field 'agee'"):
            service.read_rule(session, "agee > 30")
        with pytest.raises(RuleError, match="there is no segment 'vip'"):
            service.read_rule(session, 'in segment "vip"')
        with pytest.raises(RuleError, match="either as text or as JSON"):
            service.read_rule(session)
        node = service.read_rule(session, rule={"field": "age", "op": ">", "value": 30})
        assert node == parse("age > 30")


def test_segments_may_refer_to_segments_but_never_in_a_circle(db):
    save(db, "a", "age > 30")
    save(db, "b", 'in segment "a" and gender = "f"')
    save(db, "c", 'in segment "b" or city = "Köln"')
    with db.session() as session:
        with pytest.raises(RuleError, match="circle: a → c → b → a"):
            service.update(session, "a", service.read_rule(session, 'in segment "c"'))
        with pytest.raises(RuleError, match="circle: c → c"):
            service.update(session, "c", service.read_rule(session, 'in segment "c"'))
        with pytest.raises(service.SegmentInUse, match="used by b"):
            service.delete_segment(session, "a")
        service.delete_segment(session, "c")
        assert [s.name for s in service.list_segments(session)] == ["a", "b"]


def test_counts_follow_the_rule_and_referenced_segments(db, settings):
    ids = people(db, settings)
    save(db, "frauen", 'gender = "f"')
    with db.session(write=False) as session:
        assert service.count(session, parse('city = "München"'), NOW) == 2
        older = service.read_rule(session, 'in segment "frauen" and age > 30')
        assert service.count(session, older, NOW) == 1
        assert service.count_segment(session, "frauen", NOW) == 2
        rows = list(service.member_rows(session, "frauen", NOW))
    assert [r["customer_id"] for r in rows] == sorted([ids["A"], ids["B"]])
    assert rows[0]["first_name"] == "Anna"


# --- membership: batch ------------------------------------------------------------------------


def test_refresh_materialises_entries_and_exits_with_timeline_events(db, settings):
    ids = people(db, settings)
    track(db, settings, "A", "Order Completed", NOW - timedelta(days=10), order_id="o1",
          products=[{"category": "Laufschuhe", "price": 120}])  # fmt: skip
    save(db, "läufer", 'has purchase where category = "Laufschuhe" in last 30 days')
    with db.session() as session:
        done = service.refresh(session, None, NOW)
    assert done == [membership.Refreshed("läufer", 1, 1, 0)]
    assert timeline(db, ids["A"]) == [("Segment Entered", "läufer")]
    with db.session() as session:  # nothing changed: nothing written
        assert service.refresh(session, ["läufer"], NOW) == [
            membership.Refreshed("läufer", 1, 0, 0)
        ]
    later = NOW + timedelta(days=25)  # the purchase leaves the window
    with db.session() as session:
        assert service.refresh(session, None, later) == [membership.Refreshed("läufer", 0, 0, 1)]
        info = service.get(session, "läufer")
    assert info.members == 0 and info.refreshed_at == later
    assert timeline(db, ids["A"]) == [("Segment Entered", "läufer"), ("Segment Left", "läufer")]
    with db.session(write=False) as session:
        stay = session.scalars(select(SegmentMembership)).one()
    assert (stay.entered_at, stay.left_at, stay.version) == (NOW, later, 1)


def test_refresh_of_an_unknown_segment_is_refused(db):
    with db.session() as session, pytest.raises(service.SegmentNotFound):
        service.refresh(session, ["nope"], NOW)


# --- membership: live -----------------------------------------------------------------------


def test_an_event_moves_the_customer_in_and_out_at_once(db, settings):
    ids = people(db, settings)
    save(db, "käufer", "count(purchases in last 90 days) >= 2")
    save(db, "treue", 'in segment "käufer" and gender = "f"')
    at = NOW - timedelta(days=1)
    for order in ("o1", "o2"):
        customers = track(db, settings, "A", "Order Completed", at, order_id=order, total=10)
        with db.session() as session:
            changes = service.reevaluate(session, customers, NOW)
    assert sorted(changes.entered) == [("käufer", ids["A"]), ("treue", ids["A"])]
    assert timeline(db, ids["A"]) == [("Segment Entered", "käufer"), ("Segment Entered", "treue")]
    with db.session() as session:  # again: nothing changes, nothing is written twice
        assert service.reevaluate(session, [ids["A"]], NOW) == membership.Changes()
    # A profile change: Anna becomes Andreas, m; she leaves "treue" only.
    put(db, settings, "shop", rec("A", first_name="Andreas", last_name="A", gender="m"))
    with db.session() as session:
        changes = service.reevaluate(session, [ids["A"]], NOW)
    assert changes == membership.Changes([], [("treue", ids["A"])])
    with db.session(write=False) as session:
        assert {s.name: s.members for s in service.list_segments(session)} == {
            "käufer": 1,
            "treue": 0,
        }
    # Batch agrees with live: nothing to do.
    with db.session() as session:
        assert {r.segment: (r.entered, r.left) for r in service.refresh(session, None, NOW)} == {
            "käufer": (0, 0),
            "treue": (0, 0),
        }


def test_a_merged_away_customer_leaves_and_the_survivor_is_evaluated(db, settings):
    ids = people(db, settings)
    save(db, "frauen", 'gender = "f"')
    with db.session() as session:
        service.reevaluate(session, ids.values(), NOW)
        merge_customers(session, ids["A"], ids["B"], "test", settings)  # re-evaluates
        changes = service.reevaluate(session, [ids["A"], ids["B"]], NOW)
    assert changes == membership.Changes()  # the merge itself closed B's stay
    assert timeline(db, ids["B"])[-1:] == [("Segment Left", "frauen")]
    with db.session(write=False) as session:
        assert service.get(session, "frauen").members == 1


def test_without_segments_reevaluation_reads_nothing_else(db, settings):
    ids = people(db, settings)
    with db.session() as session:
        assert service.reevaluate(session, ids.values(), NOW) == membership.Changes()
        assert service.reevaluate(session, [], NOW) == membership.Changes()


def test_an_edited_segment_is_compiled_again_for_live_evaluation(db, settings):
    ids = people(db, settings)
    save(db, "x", 'city = "Berlin"')
    with db.session() as session:
        assert service.reevaluate(session, [ids["A"]], NOW) == membership.Changes()
        service.update(session, "x", parse('city = "München"'))
    with db.session() as session:
        assert service.reevaluate(session, [ids["A"]], NOW).entered == [("x", ids["A"])]


def test_an_edit_in_this_process_is_live_at_once(db, settings, monkeypatch):
    monkeypatch.setattr(membership, "REVALIDATE_SECONDS", 3600.0)  # only invalidation helps
    ids = people(db, settings)
    save(db, "x", 'city = "Berlin"')
    with db.session() as session:
        assert service.reevaluate(session, [ids["A"]], NOW) == membership.Changes()
    with db.session() as session:
        service.update(session, "x", parse('city = "München"'))
    with db.session() as session:
        assert service.reevaluate(session, [ids["A"]], NOW).entered == [("x", ids["A"])]
    with db.session() as session:  # deleted: nothing left to evaluate
        service.delete_segment(session, "x")
    save(db, "y", 'gender = "f"')
    with db.session() as session:
        assert service.reevaluate(session, [ids["A"]], NOW).entered == [("y", ids["A"])]


def test_an_edit_in_another_process_is_live_after_the_revalidation_interval(
    db, settings, monkeypatch
):
    """Another process edits the segment: this one's compiled closures are trusted for
    REVALIDATE_SECONDS, then the versions are read again and the edit is seen."""
    from relata.db import Database
    from relata.segments.models import Segment

    clock = [1000.0]
    monkeypatch.setattr(membership, "_clock", lambda: clock[0])
    monkeypatch.setattr(membership, "REVALIDATE_SECONDS", 5.0)
    ids = people(db, settings)
    save(db, "x", 'city = "Berlin"')
    with db.session() as session:  # compiled and cached here
        assert service.reevaluate(session, [ids["A"]], NOW) == membership.Changes()
    other = Database(db.url)  # "another process": its own engine, and no invalidation
    try:
        with other.session() as session:
            session.execute(
                update(Segment)
                .where(Segment.name == "x")
                .values(rule=to_json(parse('gender = "f"')), version=Segment.version + 1)
            )
    finally:
        other.dispose()
    clock[0] += 4.0
    with db.session() as session:  # within the interval: the old rule, nothing written
        assert service.reevaluate(session, [ids["A"]], NOW) == membership.Changes()
    clock[0] += 2.0
    with db.session() as session:
        assert service.reevaluate(session, [ids["A"]], NOW).entered == [("x", ids["A"])]


def test_a_change_is_written_only_with_the_segments_as_they_are_now(db, settings, monkeypatch):
    """Another process replaced a segment: a change decided on the stale compiled one is
    decided again on what is there before anything is written."""
    from relata.db import Database
    from relata.segments.models import Segment, SegmentVersion

    monkeypatch.setattr(membership, "REVALIDATE_SECONDS", 3600.0)
    ids = people(db, settings)
    save(db, "x", 'city = "Berlin"')
    with db.session() as session:  # compiled and cached; Anna is not in Berlin
        assert service.reevaluate(session, [ids["A"]], NOW) == membership.Changes()
    other = Database(db.url)  # "another process": x deleted, y made, no invalidation here
    try:
        with other.session() as session:
            session.execute(delete(SegmentVersion))
            session.execute(delete(Segment))
            session.add(Segment(name="y", rule=to_json(parse('gender = "f"')), version=1))
    finally:
        other.dispose()
    with db.session() as session:  # stale: Berta would enter x, which is gone
        changes = service.reevaluate(session, [ids["B"]], NOW)
    assert changes == membership.Changes([("y", ids["B"])], [])
    with db.session(write=False) as session:
        stays = session.execute(select(SegmentMembership.segment_id)).scalars().all()
        assert stays == [service.get(session, "y").id]
    with db.session() as session:  # and y is what this process evaluates from now on
        assert service.reevaluate(session, [ids["A"]], NOW).entered == [("y", ids["A"])]


def test_a_reevaluation_that_changes_nothing_reads_once_and_writes_nothing(
    db, settings, monkeypatch
):
    from sqlalchemy import event, text

    monkeypatch.setattr(membership, "REVALIDATE_SECONDS", 3600.0)
    ids = people(db, settings)
    save(db, "frauen", 'gender = "f"')
    save(db, "werbung", 'consent.marketing.email = "granted"')
    save(db, "käufer", 'count(purchases) >= 1 or has event "Order Completed" in last 7 days')
    with db.session() as session:
        assert len(service.reevaluate(session, ids.values(), NOW).entered) == 2
    seen: list[str] = []  # what SQLAlchemy executes; and on SQLite all the driver runs

    def executed(conn, cursor, statement, *args) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", executed)
    try:
        with db.session() as session:
            session.execute(text("SELECT 1"))  # the caller's transaction
            raw = session.connection().connection.dbapi_connection
            traced: list[str] = []
            if db.is_sqlite:
                raw.set_trace_callback(traced.append)  # type: ignore[union-attr]
            seen.clear()
            assert service.reevaluate(session, ids.values(), NOW) == membership.Changes()
            if db.is_sqlite:
                raw.set_trace_callback(None)  # type: ignore[union-attr]
    finally:
        event.remove(db.engine, "before_cursor_execute", executed)
    writes = ("INSERT", "UPDATE", "DELETE", "SELECT count(pg_advisory")
    assert [q for q in seen if q.lstrip().upper().startswith(writes)] == []
    assert seen == []  # not through SQLAlchemy's execution: one statement on the cursor
    if db.is_sqlite:  # the profiles with their open stays and their consent ledger
        assert len(traced) == 1, traced
        assert "segment_memberships" in traced[0] and "consent_entries" in traced[0]


def test_anonymous_visitors_are_segmented_only_with_their_consent_to_profiling(db, settings):
    # Event ingest re-evaluates live segments at the wall clock: this test lives there too.
    now = datetime.now(UTC)
    save(db, "leser", 'has event "Article Read" in last 7 days')
    allowed = {"consent": {"categoryPreferences": {"Personalisierung": True}}}
    refused = {"consent": {"categoryPreferences": {"Personalisierung": False}}}
    reads = [
        Track(type="track", anonymousId=v, event="Article Read", timestamp=now, context=c)
        for v, c in (("v1", allowed), ("v2", refused), ("v3", {}))
    ]

    def members() -> list[int]:
        with db.session(write=False) as session:
            return list(
                session.scalars(
                    select(SegmentMembership.customer_id).where(SegmentMembership.left_at.is_(None))
                )
            )

    with db.session() as session:
        customers = events.ingest(session, reads, settings).customers  # evaluated live
    assert members() == [customers[0]]
    identify = Identify(type="identify", anonymousId="v1", userId="U1", traits={"email": "u@x.de"})
    with db.session() as session:
        after = events.ingest(session, [identify], settings).customers
        changes = service.reevaluate(session, [*customers, *after])
    # The visitor became a known customer in place: still one stay, nothing new.
    assert after == [customers[0]] and changes == membership.Changes()
    assert members() == [customers[0]]


def test_a_segment_that_no_longer_compiles_never_stops_live_evaluation(db, settings, caplog):
    from sqlalchemy import update

    from relata.segments.models import Segment

    ids = people(db, settings)
    save(db, "frauen", 'gender = "f"')
    save(db, "kaputt", 'city = "Köln"')
    with db.session() as session:  # a field that is gone (another domain removed it)
        session.execute(
            update(Segment)
            .where(Segment.name == "kaputt")
            .values(rule={"field": "loyalty_tier", "op": "=", "value": "gold"})
        )
    with db.session() as session:
        changes = service.reevaluate(session, [ids["A"]], NOW)
    assert changes.entered == [("frauen", ids["A"])]
    assert "segment 'kaputt' is not evaluated live" in caplog.text


def test_an_imported_file_moves_its_customers_into_live_segments(db, settings, tmp_path):
    from relata.ingest.service import import_file

    make_source(db, "shop")
    save(db, "berliner", 'city = "Berlin"')
    path = tmp_path / "kunden.csv"
    path.write_text("Kundennummer;Nachname;Ort\nK1;Meier;Berlin\nK2;Huber;Köln\n", "utf-8")
    import_file(db, path, "shop", settings)
    with db.session(write=False) as session:
        inside = session.scalars(select(SegmentMembership.customer_id)).all()
    assert len(inside) == 1
    path.write_text("Kundennummer;Nachname;Ort\nK1;Meier;Potsdam\nK2;Huber;Berlin\n", "utf-8")
    import_file(db, path, "shop", settings)  # both moved: one left, one entered
    with db.session(write=False) as session:
        stays = session.execute(
            select(SegmentMembership.customer_id, SegmentMembership.left_at)
        ).all()
    assert len(stays) == 2
    assert sorted(left is None for _, left in stays) == [False, True]


def test_a_segment_deleted_and_made_again_writes_its_events_afresh(db, settings):
    """SQLite hands out the ids of deleted rows again; event message ids must not clash."""
    ids = people(db, settings)
    for _ in range(2):
        save(db, "frauen", 'gender = "f"')
        with db.session() as session:
            service.refresh(session, None, NOW)
            service.delete_segment(session, "frauen")
    assert timeline(db, ids["A"]) == [("Segment Entered", "frauen")] * 2


# --- live: the one-statement loader ---------------------------------------------------------


@st.composite
def _needs(draw: st.DrawFn, now: datetime) -> Needs:
    names = draw(st.lists(st.sampled_from(EVENT_NAMES), max_size=3, unique=True))
    return Needs(
        all_events=not names and draw(st.booleans()),
        event_names=frozenset(names),
        events_since=draw(st.none() | st.sampled_from(moment_pool(now))),
        holdings=draw(st.booleans()),
        identifiers=draw(st.booleans()),
        extras=frozenset(draw(st.sampled_from([(), ("consent",)]))),
    )


def _comparable(profile: Profile) -> tuple:
    def order(row: object) -> str:
        return repr(row)

    return (
        profile.id,
        profile.fields,
        sorted(profile.events, key=order),
        sorted(profile.holdings, key=order),
        sorted(profile.identifiers, key=order),
        profile.extra,
    )


@given(st.sampled_from(NOWS).flatmap(lambda now: st.tuples(datasets(now), _needs(now))))
@hypothesis_settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
def test_the_one_statement_loader_reads_what_the_loader_reads(db, case):
    """Live re-evaluation reads profiles and open stays in one statement: the same rows,
    values and types as load_profiles (every column kind, JSON properties, decimals,
    timestamps, merged customers, consent), on both databases."""
    data, needs = case
    store(db, data)
    ids = [c["id"] for c in data["customers"]] + [999]  # and one that does not exist
    with db.session(write=False) as session:
        expected = loader.load_profiles(session, ids, needs)
        found, also = loader.load_packed(session, ids, needs, membership._open_stays_json)
        # A registered loader that gives its rows is read in the same statement, alike.
        with_rows, _ = _packed_with_consent_rows(session, ids, needs)
    assert sorted(found) == sorted(expected) == sorted(with_rows)
    for cid, profile in expected.items():
        assert _comparable(found[cid]) == _comparable(profile)
        assert _comparable(with_rows[cid]) == _comparable(profile)
        pairs = zip(
            sorted([*found[cid].events, *found[cid].holdings, *found[cid].identifiers], key=repr),
            sorted([*profile.events, *profile.holdings, *profile.identifiers], key=repr),
            strict=True,
        )
        for a, b in pairs:  # equal, and of the same types (a Decimal is never a float)
            assert [type(v) for v in vars_of(a)] == [type(v) for v in vars_of(b)]
    # Every stored customer, active or merged, comes with its (here: no) open stays.
    assert also == {c["id"]: [[]] for c in data["customers"]}


def _packed_with_consent_rows(session, ids: list[int], needs: Needs) -> tuple[dict, dict]:
    """load_packed with the consent ledger registered as rows (``loader.Rows``), built
    into each customer's states as ``consent_fields.load_consents`` builds them."""
    from relata.consent.ledger import Entry, derive
    from relata.consent.models import ConsentEntry

    def build(rows: list[tuple]) -> dict:
        entries = [Entry(p, c, a, at, o, frozenset(cv or ()), i) for p, c, a, at, o, cv, i in rows]
        return {key: state.status for key, state in derive(entries).items()}

    columns = ("purpose", "channel", "action", "occurred_at", "origin_customer_id", "covers")
    rows = loader.Rows(ConsentEntry.__table__, "customer_id", (*columns, "id"), build)
    before = loader._ROWS.get("consent")
    loader._ROWS["consent"] = rows
    try:
        return loader.load_packed(session, ids, needs)
    finally:
        if before is None:
            loader._ROWS.pop("consent")
        else:
            loader._ROWS["consent"] = before


def vars_of(row: object) -> list[object]:
    return [getattr(row, name) for name in row.__slots__]  # type: ignore[attr-defined]


def test_open_stays_come_with_the_profile(db, settings):
    ids = people(db, settings)
    save(db, "frauen", 'gender = "f"')
    save(db, "alle", 'city != ""')
    with db.session() as session:
        service.reevaluate(session, ids.values(), NOW)
        merge_customers(session, ids["A"], ids["B"], "test", settings)  # Berta's f, Berlin
    with db.session(write=False) as session:
        stays = dict(
            session.execute(
                select(SegmentMembership.id, SegmentMembership.segment_id).where(
                    SegmentMembership.customer_id == ids["A"], SegmentMembership.left_at.is_(None)
                )
            ).all()
        )
        needs = Needs(holdings=True)
        profiles, also = loader.load_packed(
            session, ids.values(), needs, membership._open_stays_json
        )
    assert sorted(profiles) == sorted([ids["A"], ids["C"]])  # Berta is merged away
    assert len(stays) == 2
    assert sorted(map(tuple, also[ids["A"]][0])) == sorted((s, i) for i, s in stays.items())
    assert also[ids["B"]] == [[]]  # her stays were closed by the merge
    assert len(also[ids["C"]][0]) == 1  # Carl: in "alle" only


def test_a_failing_read_is_raised_as_sqlalchemy_raises_it(db, settings, monkeypatch):
    """The one statement runs on the driver's cursor; its errors still come as SQLAlchemy's
    (which callers catch and retry), and the database is usable afterwards."""
    import dataclasses

    from sqlalchemy.exc import DBAPIError

    ids = people(db, settings)
    save(db, "frauen", 'gender = "f"')
    real = loader._packed

    def broken(*args):
        return dataclasses.replace(real(*args), sql="SELECT no_such_column FROM customers")

    monkeypatch.setattr(loader, "_packed", broken)
    with pytest.raises(DBAPIError), db.session() as session:
        service.reevaluate(session, [ids["A"]], NOW)
    monkeypatch.setattr(loader, "_packed", real)
    with db.session() as session:
        assert service.reevaluate(session, [ids["A"]], NOW).entered == [("frauen", ids["A"])]
