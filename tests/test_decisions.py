"""POST /v1/decisions and responses on both databases: consent, policies, learning, the log."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from relata.config import Settings
from relata.consent import service as consent
from relata.db import Database
from relata.decisions import service, sync
from relata.decisions.engine import Engine, engine_for
from relata.decisions.models import Decision, DecisionOutcome, DecisionResponse, DecisionStat
from relata.events.models import Event
from tests.helpers import decision_settings, make_source, put, rec


@pytest.fixture
def settings(db: Database) -> Settings:
    return decision_settings(db)


def person(db, settings, key="K1", **fields) -> int:
    make_source(db, "shop") if not _has_source(db) else None
    data = {"first_name": "Eva", "last_name": "Berg", "email": f"{key.lower()}@example.de"}
    return put(db, settings, "shop", rec(key, **{**data, **fields})).customer_of[key]


def _has_source(db) -> bool:
    from relata.ingest.sources import get_source

    with db.session(write=False) as s:
        return get_source(s, "shop") is not None


def grant(db, settings, customer_id, purpose="personalisation", channel="web", action="grant"):
    with db.session() as s:
        consent.record(s, settings, customer_id, purpose, channel, action, via="api")


def offer(client, key, expect=201, **kw):
    body = {"key": key, "name": key.title(), "channels": ["web"], "value": 10, **kw}
    r = client.post("/v1/offers", json=body)
    assert r.status_code == expect, r.text
    return r.json()


def decide(client, expect=200, **kw):
    r = client.post("/v1/decisions", json=kw)
    assert r.status_code == expect, r.text
    return r.json()


def keys(decision) -> list[str]:
    return [o["key"] for o in decision["offers"]]


@pytest.fixture
def eva(db, settings) -> int:
    cid = person(db, settings, birth_date="1980-04-02")
    grant(db, settings, cid)
    return cid


def test_a_decision_is_made_within_consent(client, db, settings):
    cid = person(db, settings)
    offer(client, "shoes")
    refused = decide(client, customer_id=cid, channel="web")
    assert refused["offers"] == [] and refused["excluded"] == {"consent": 1}
    assert refused["blocked"] == "no personalisation consent on web"
    grant(db, settings, cid)
    made = decide(client, customer_id=cid, channel="web")
    assert keys(made) == ["shoes"] and made["offers"][0]["reason"]
    # E-mail is marketing, and that consent is a different one.
    assert decide(client, customer_id=cid, channel="email")["blocked"]
    grant(db, settings, cid, "personalisation", "web", "revoke")
    assert decide(client, customer_id=cid, channel="web")["blocked"]


def test_an_anonymous_visitor_follows_the_cookie_banner(client, db):
    offer(client, "banner", kind="banner")
    yes = {"consent": {"categoryPreferences": {"Personalisation": True}}}
    no = {"consent": {"categoryPreferences": {"Personalisation": False}}}
    first = decide(client, anonymous_id="visitor-1", channel="web", context=yes)
    assert keys(first) == ["banner"]
    again = decide(client, anonymous_id="visitor-1", channel="web", context=no)
    assert again["customer_id"] == first["customer_id"] and again["blocked"]
    assert decide(client, anonymous_id="visitor-2", channel="web")["blocked"]


def test_explain_lists_every_offer_with_its_reason(client, db, settings, eva):
    offer(client, "a", rule="age > 60")
    offer(client, "b", channels=["email"])
    offer(client, "c", status="paused")
    offer(client, "d", category="shoes")
    found = decide(client, customer_id=eva, channel="web", explain=True, limit=3)
    by_key = {c["key"]: c for c in found["considered"]}
    assert by_key["a"]["code"] == "rule" and by_key["a"]["detail"] == "age > 60"
    assert by_key["b"]["code"] == "channel"
    assert by_key["c"]["code"] == "not_live"
    assert by_key["d"]["status"] == "chosen"
    parts = found["offers"][0]["parts"]
    assert set(parts) == {"base", "context", "own", "similar", "history", "exploration"}
    assert found["excluded"] == {"rule": 1, "channel": 1, "not_live": 1}
    assert found["learning_cells"][0] == "channel=web"
    plain = decide(client, customer_id=eva, channel="web")
    assert "considered" not in plain and "parts" not in plain["offers"][0]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"customer_id": 999999, "channel": "web"}, 404, "no customer with id 999999"),
        ({"customer_id": 1, "channel": "fax"}, 422, "unknown channel 'fax'"),
        ({"customer_id": 1, "channel": "web", "context": {"a": {"b": 1}}}, 422, "context"),
        ({"customer_id": 1, "channel": "web", "context": [1]}, 422, "context"),
        ({"customer_id": 1, "anonymous_id": "x", "channel": "web"}, 422, "either"),
        ({"channel": "web"}, 422, "either"),
        ({"customer_id": 1, "channel": "web", "limit": 0}, 422, "limit"),
        ({"customer_id": 0, "channel": "web"}, 422, "customer_id"),
        ({"customer_id": 1, "channel": "web", "extra": 1}, 422, "extra"),
    ],
)
def test_bad_decision_requests_are_answered_with_a_clear_4xx(
    client, db, settings, body, status, message
):
    person(db, settings)
    r = client.post("/v1/decisions", json=body)
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]


def test_responses_are_checked_and_stored_once(client, db, settings, eva):
    offer(client, "shoes")
    offer(client, "bag")
    made = decide(client, customer_id=eva, channel="web")
    did, shown = made["decision_id"], made["offers"][0]["key"]
    other = "bag" if shown == "shoes" else "shoes"
    url = f"/v1/decisions/{did}/responses"
    assert client.post(url, json={"offer": shown, "type": "click"}).json() == {
        "recorded": 1,
        "duplicates": 0,
    }
    assert client.post(url, json={"offer": shown, "type": "click"}).json()["duplicates"] == 1
    r = client.post(url, json={"offer": other, "type": "accept"})
    assert r.status_code == 422 and "was not offered" in r.json()["detail"]
    r = client.post(url, json={"offer": shown, "type": "love"})
    assert r.status_code == 422
    r = client.post(
        "/v1/decisions/0190d0c8-0000-7000-8000-000000000000/responses",
        json={"offer": shown, "type": "click"},
    )
    assert r.status_code == 404 and "no decision" in r.json()["detail"]
    assert (
        client.post(
            "/v1/decisions/nonsense/responses", json={"offer": shown, "type": "click"}
        ).status_code
        == 404
    )
    # A batch with one unknown decision is refused whole, naming the item; nothing stored.
    bad = [
        {"decision_id": did, "offer": shown, "type": "accept"},
        {"decision_id": "0190d0c8-0000-7000-8000-000000000000", "offer": shown, "type": "click"},
    ]
    r = client.post("/v1/decision-responses", json={"responses": bad})
    assert r.status_code == 404 and "responses.1: no decision" in r.json()["detail"]
    assert client.post("/v1/decision-responses", json={"responses": []}).status_code == 422
    r = client.post("/v1/decision-responses", json={"responses": [{"offer": shown}]})
    assert r.status_code == 422
    batch = [{"decision_id": did, "offer": shown, "type": "convert", "value": 49.9}]
    assert client.post("/v1/decision-responses", json={"responses": batch}).status_code == 201
    got = client.get(f"/v1/decisions/{did}").json()
    assert [r["type"] for r in got["responses"]] == ["impression", "click", "convert"]
    with db.session(write=False) as s:
        outcomes = s.execute(select(DecisionOutcome.kind).order_by(DecisionOutcome.id)).all()
    # One show and one win, however many positive responses.
    assert [o[0] for o in outcomes] == ["show", "win"]


def test_a_decision_not_counted_as_shown_learns_its_show_from_the_response(client, db, eva):
    offer(client, "shoes")
    made = decide(client, customer_id=eva, channel="web", impressions=False)
    did = made["decision_id"]
    with db.session(write=False) as s:
        assert s.execute(select(func.count()).select_from(DecisionOutcome)).scalar() == 0
    url = f"/v1/decisions/{did}/responses"
    assert client.post(url, json={"offer": "shoes", "type": "impression"}).status_code == 201
    assert client.post(url, json={"offer": "shoes", "type": "click"}).status_code == 201
    with db.session(write=False) as s:
        outcomes = s.execute(select(DecisionOutcome.kind).order_by(DecisionOutcome.id)).all()
    # The impression brought the show; the click adds the win and no second show.
    assert [o[0] for o in outcomes] == ["show", "win"]


def test_decisions_and_responses_are_on_the_timeline(client, db, settings, eva):
    offer(client, "shoes")
    made = decide(client, customer_id=eva, channel="web")
    client.post(
        f"/v1/decisions/{made['decision_id']}/responses", json={"offer": "shoes", "type": "accept"}
    )
    view = client.get(f"/v1/customers/{eva}").json()
    names = [e["name"] for e in view["timeline"]["events"]]
    assert "Decision Made" in names and "Offer Accepted" in names
    made_event = next(e for e in view["timeline"]["events"] if e["name"] == "Decision Made")
    assert made_event["properties"]["decision_id"] == made["decision_id"]
    assert made_event["properties"]["offers"] == ["shoes"]


def test_learning_from_responses_moves_the_scores(client, db, settings, eva):
    offer(client, "liked", max_impressions=None)
    offer(client, "ignored", max_impressions=None)
    for _ in range(30):
        made = decide(client, customer_id=eva, channel="web", limit=2, explain=True)
        client.post(
            f"/v1/decisions/{made['decision_id']}/responses",
            json={"offer": "liked", "type": "accept"},
        )
    with db.session() as s:
        assert sync.fold(s, settings.decision_half_life_days) > 0
    with db.session(write=False) as s:
        wins = dict(
            s.execute(
                select(DecisionStat.offer_id, DecisionStat.wins).where(DecisionStat.cell == 0)
            ).all()
        )
    assert sorted(wins.values()) == [0.0, pytest.approx(30, rel=0.01)]
    found = decide(client, customer_id=eva, channel="web", limit=2, explain=True)
    by_key = {c["key"]: c for c in found["considered"]}
    assert by_key["liked"]["propensity"] > 0.5 > 0.1 > by_key["ignored"]["propensity"]
    assert keys(found)[0] == "liked"


def test_a_frequency_cap_holds_across_decisions_and_processes(client, db, settings, eva):
    grant(db, settings, eva, "marketing", "email")
    offer(client, "newsletter", channels=["email"])
    r = client.post(
        "/v1/contact-policies",
        json={
            "name": "email-weekly",
            "kind": "frequency",
            "channels": ["email"],
            "max_count": 1,
            "window_days": 7,
        },
    )
    assert r.status_code == 201, r.text
    assert keys(decide(client, customer_id=eva, channel="email")) == ["newsletter"]
    second = decide(client, customer_id=eva, channel="email")
    assert second["offers"] == [] and "email-weekly" in second["blocked"]
    # Another process (a fresh engine) reads the contact from the log.
    other = Engine(settings)
    with db.session() as s:
        from relata.decisions.schemas import DecisionRequest

        again = service.decide(
            s, other, settings, DecisionRequest(customer_id=eva, channel="email")
        )
    assert again.blocked and "email-weekly" in again.blocked


def test_a_signed_contract_suppresses_the_offer_on_every_channel(client, db, settings, eva):
    grant(db, settings, eva, "personalisation", "phone")
    offer(
        client,
        "mortgage",
        channels=["web", "hotline"],
        category="mortgages",
        product_id="mortgage-10y",
        suppress_held="category",
        value=900,
    )
    assert keys(decide(client, customer_id=eva, channel="hotline")) == ["mortgage"]
    r = client.post(
        "/v1/events",
        json={
            "type": "track",
            "userId": "K1",
            "event": "Contract Signed",
            "source": "shop",
            "properties": {
                "contract_id": "M-1",
                "product_id": "mortgage-5y",
                "category": "mortgages",
            },
        },
    )
    assert r.status_code == 202, r.text
    # Event ingest (responses_from_events) forgets the cached customer: no call needed.
    for channel in ("web", "hotline"):
        found = decide(client, customer_id=eva, channel=channel, explain=True)
        assert found["offers"] == []
        assert found["considered"][0]["code"] == "held", channel


def test_responses_through_the_event_api(client, db, settings, eva):
    other = person(db, settings, "K2")
    offer(client, "shoes")
    made = decide(client, customer_id=eva, channel="web")
    did = made["decision_id"]
    events = [
        {
            "type": "track",
            "userId": "K1",
            "event": "Offer Accepted",
            "source": "shop",
            "messageId": "m1",
            "properties": {"decision_id": did, "offer": "shoes"},
        },
        # Another customer cannot answer Eva's decision; a wrong id is no response.
        {
            "type": "track",
            "userId": "K2",
            "event": "Offer Rejected",
            "source": "shop",
            "messageId": "m2",
            "properties": {"decision_id": did, "offer": "shoes"},
        },
        {
            "type": "track",
            "userId": "K1",
            "event": "Offer Clicked",
            "source": "shop",
            "messageId": "m3",
            "properties": {"decision_id": "no-such-id", "offer": "shoes"},
        },
    ]
    # Event ingest records the response in its own transaction: no extra call.
    assert client.post("/v1/events", json={"batch": events}).status_code == 202
    with db.session(write=False) as s:
        kinds = s.execute(select(DecisionResponse.kind, DecisionResponse.via)).all()
        outcomes = s.execute(select(DecisionOutcome.kind)).scalars().all()
    assert sorted(kinds) == [("accept", "event"), ("impression", "decision")]
    assert sorted(outcomes) == ["show", "win"]  # shown once (impression), won once
    # The same messageId again is a duplicate event: nothing counts twice.
    assert client.post("/v1/events", json={"batch": events}).status_code == 202
    with db.session() as s:
        stored = s.execute(select(Event).where(Event.name.like("Offer %"))).scalars().all()
        assert len(stored) == 3
        assert service.responses_from_events(s, stored) == 0  # replayed: once
    with db.session(write=False) as s:
        assert s.execute(select(func.count()).select_from(DecisionResponse)).scalar() == 2
        assert s.execute(select(func.count()).select_from(DecisionOutcome)).scalar() == 2
    with db.session() as s:
        sync.fold(s, settings.decision_half_life_days)
    with db.session(write=False) as s:
        stat = s.execute(select(func.sum(DecisionStat.shows), func.sum(DecisionStat.wins))).one()
    assert stat[0] > 0 and stat[1] > 0  # the learning counts moved
    assert other != eva


def test_a_merge_moves_decisions_and_an_unmerge_brings_them_back(client, db, settings, eva):
    from relata.db import customer_owned_tables
    from relata.identity import service as identity

    assert {"decisions", "decision_responses"} <= {t.name for t in customer_owned_tables()}
    second = person(db, settings, "K2", first_name="Jan")
    grant(db, settings, second)
    offer(client, "shoes")
    made = decide(client, customer_id=second, channel="web")
    with db.session() as s:
        merge_id = identity.merge_customers(s, eva, second, "test", settings)
    with db.session(write=False) as s:
        owner = s.scalar(select(Decision.customer_id))
        responders = set(s.scalars(select(DecisionResponse.customer_id)))
    assert owner == eva and responders == {eva}
    with db.session() as s:
        identity.unmerge(s, merge_id, settings)
    with db.session(write=False) as s:
        assert s.scalar(select(Decision.customer_id)) == second
    assert made["customer_id"] == second


def test_catalogue_changes_reach_another_process_without_restart(client, db, settings, eva):
    other = Engine(settings)
    with db.session(write=False) as s:
        assert other.sync(s).catalogue.offers == ()
    offer(client, "shoes", value=10)
    with db.session(write=False) as s:
        snap = other.snapshot(s)
    assert [o.key for o in snap.catalogue.offers] == ["shoes"]
    r = client.patch("/v1/offers/shoes", json={"value": 25, "rule": "age > 18"})
    assert r.status_code == 200 and r.json()["version"] == 2
    with db.session(write=False) as s:
        changed = other.snapshot(s).catalogue.offers[0]
    assert (changed.value, changed.rule, changed.version) == (25, "age > 18", 2)
    versions = client.get("/v1/offers/shoes/versions").json()
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[1]["data"]["value"] == 10
    client.delete("/v1/offers/shoes")
    with db.session(write=False) as s:
        assert other.snapshot(s).catalogue.offers == ()


def test_a_server_s_background_keeps_the_snapshot_current_and_folds(client, db, settings, eva):
    import time

    offer(client, "shoes", value=10)
    assert keys(decide(client, customer_id=eva, channel="web")) == ["shoes"]  # an outcome
    live = Engine(settings.model_copy(update={"decision_sync_seconds": 0.05,
                                                "decision_fold_seconds": 0.05}))  # fmt: skip
    with db.session(write=False) as s:
        assert [o.value for o in live.snapshot(s).catalogue.offers] == [10]
    live.start(db)
    try:
        assert client.patch("/v1/offers/shoes", json={"value": 25}).status_code == 200

        def current() -> tuple[float, int]:
            # snapshot() itself no longer polls: only the background can bring the change
            with db.session(write=False) as s:
                value = live.snapshot(s).catalogue.offers[0].value
                unfolded = s.scalar(
                    select(func.count()).select_from(DecisionOutcome).where(~DecisionOutcome.folded)
                )
            return value, unfolded

        deadline = time.monotonic() + 5
        while current() != (25, 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert current() == (25, 0)
    finally:
        live.stop()


def test_a_cache_miss_reads_in_one_statement_what_the_separate_reads_did(client, db, settings, eva):
    from datetime import timedelta

    from sqlalchemy import event

    from relata.consent import cache
    from relata.db import utcnow
    from relata.decisions import eligibility, loader
    from relata.decisions.features import ResponseRow, build

    offer(client, "shoes")
    offer(client, "bag")
    made = decide(client, customer_id=eva, channel="web")
    url = f"/v1/decisions/{made['decision_id']}/responses"
    assert client.post(url, json={"offer": made["offers"][0]["key"], "type": "click"}).is_success
    grant(db, settings, eva, "marketing", "email")
    grant(db, settings, eva, "marketing", "email", action="revoke")
    now = utcnow()
    engine = Engine(settings)
    with db.session(write=False) as s:
        snap = engine.sync(s)
        categories = {o.id: o.category for o in snap.catalogue.offers}
        statements: list[str] = []
        listener = lambda *a: statements.append(a[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            cache.for_session(s).clear()
            state = loader.customer(s, eva, snap.needs, categories, now, 30, settings)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        assert statements == []  # one statement on the driver's cursor, none of SQLAlchemy's
        primed = consent.states(s, eva, settings)  # from the cache: nothing read
        cache.for_session(s).clear()
        assert primed == consent.states(s, eva, settings)  # as read by the consent domain
        assert primed[("marketing", "email")].status == "revoked"
        profile = eligibility.load(s, [eva], snap.needs)[eva]
        r = DecisionResponse
        rows = s.execute(
            select(r.decision_id, r.offer_id, r.channel, r.kind, r.occurred_at).where(
                r.customer_id == eva, r.occurred_at >= now - timedelta(days=30)
            )
        )
        expected = build(
            profile,
            [ResponseRow(str(d), o, categories.get(o), c, k, at) for d, o, c, k, at in rows],
            now,
        )
    assert state is not None
    assert state.impressions == expected.impressions and state.answered == expected.answered
    assert state.won == expected.won and state.held == expected.held
    assert state.profile.fields == expected.profile.fields
    shown = sum(len(v) for v in state.impressions.values())
    assert len(state.answered) == 1 and shown == len(made["offers"]) >= 1
    # A session not begun yet (a server's request for a cached snapshot) reads on the
    # thread's point-read connection instead, and stays unconnected: the same state.
    with db.session(write=False) as s:
        again = loader.customer(s, eva, snap.needs, categories, now, 30, settings)
        assert not s.in_transaction()
    assert again is not None and again.profile.fields == state.profile.fields
    assert again.impressions == state.impressions and again.won == state.won


def test_a_cache_miss_sees_what_its_own_session_wrote(db, settings):
    from relata.db import utcnow
    from relata.decisions import loader
    from relata.identity import service as identity

    engine = Engine(settings)
    with db.session() as s:
        snap = engine.sync(s)
        created = identity.anonymous_profiles(s, ["visitor-1"])["visitor-1"]
        # Not committed: only this session's connection sees the new profile.
        state = loader.customer(s, created, snap.needs, {}, utcnow(), 30, settings)
        assert state is not None and state.customer_id == created


def test_caps_count_in_process_at_once_and_across_processes_after_a_fold(client, db, settings, eva):
    third = person(db, settings, "K3")
    grant(db, settings, third)
    offer(client, "rare", cap_total=2, max_impressions=None)
    assert keys(decide(client, customer_id=eva, channel="web")) == ["rare"]
    assert keys(decide(client, customer_id=third, channel="web")) == ["rare"]
    capped = decide(client, customer_id=eva, channel="web")
    assert capped["offers"] == [] and capped["excluded"] == {"cap_total": 1}
    with db.session() as s:
        sync.fold(s, 30)
    fresh = Engine(settings)
    with db.session() as s:
        from relata.decisions.schemas import DecisionRequest

        found = service.decide(
            s, fresh, settings, DecisionRequest(customer_id=third, channel="web")
        )
    assert found.excluded == {"cap_total": 1}


def test_uplift_over_the_control_group_is_reported(client, db, settings, eva):
    engine_for(db, settings).config = engine_for(db, settings).config.__class__(control_share=0.5)
    offer(client, "shoes", max_impressions=None)
    offer(client, "bag", max_impressions=None)
    control = 0
    for _ in range(40):
        made = decide(client, customer_id=eva, channel="web")
        control += made["control"]
        if made["offers"]:
            client.post(
                f"/v1/decisions/{made['decision_id']}/responses",
                json={"offer": made["offers"][0]["key"], "type": "click"},
            )
    with db.session() as s:
        sync.fold(s, 30)
    report = client.get("/v1/decision-performance").json()
    total = sum(r["impressions"] + r["control_impressions"] for r in report)
    shown_in_control = sum(r["control_impressions"] for r in report)
    assert total == 40 and shown_in_control == control and 0 < control < 40
    row = next(r for r in report if r["impressions"] and r["control_impressions"])
    assert row["accept_rate"]["estimate"] == 1.0
    assert row["uplift"]["low"] <= row["uplift"]["estimate"] <= row["uplift"]["high"]


def test_offer_validation(client, db, settings):
    offer(client, "shoes")
    assert (
        client.post(
            "/v1/offers", json={"key": "shoes", "name": "x", "channels": ["web"], "value": 1}
        ).status_code
        == 409
    )
    bad = [
        ({"channels": ["fax"]}, "unknown channel 'fax'"),
        ({"rule": "age >"}, "rule: line 1"),
        ({"kind": "thing"}, "kind"),
        ({"value": -1}, "value"),
        ({"key": "Not A Key"}, "key"),
        ({"starts_at": "2026-02-01T00:00:00Z", "ends_at": "2026-01-01T00:00:00Z"}, "ends_at"),
        ({"rule": 'in segment "VIP"'}, "no segment"),
    ]
    for change, message in bad:
        body = {"key": "x1", "name": "X", "channels": ["web"], "value": 1, **change}
        r = client.post("/v1/offers", json=body)
        assert r.status_code == 422 and message in r.text, (change, r.text)
    assert client.patch("/v1/offers/nope", json={"value": 2}).status_code == 404
    assert client.patch("/v1/offers/shoes", json={"value": None}).status_code == 422
    assert client.patch("/v1/offers/shoes", json={"channels": []}).status_code == 422
    r = client.post("/v1/contact-policies", json={"name": "p", "kind": "suppress"})
    assert r.status_code == 422 and "rule" in r.text


def test_two_folds_at_once_count_every_outcome_once(db, settings, eva):
    import threading

    from relata.decisions.schemas import DecisionRequest

    engine = Engine(settings)
    with db.session() as s:
        from relata.decisions import offers
        from relata.decisions.schemas import OfferWrite

        write = OfferWrite(key="a", name="A", channels=["web"], value=1, max_impressions=None)
        offers.create_offer(s, write, settings)
    for _ in range(40):
        with db.session() as s:
            service.decide(s, engine, settings, DecisionRequest(customer_id=eva, channel="web"))

    def fold() -> None:
        with db.session() as s:
            sync.fold(s, 0, limit=7)

    for _ in range(4):
        threads = [threading.Thread(target=fold) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    with db.session() as s:
        while sync.fold(s, 0):
            pass
    with db.session(write=False) as s:
        shows = s.scalar(select(DecisionStat.shows).where(DecisionStat.cell == 0))
        unfolded = s.scalar(select(func.count()).where(DecisionOutcome.folded.is_(False)))
    assert shows == 40 and unfolded == 0


@pytest.mark.parametrize("cells", [1, 3, 129, 300])
def test_the_counts_upsert_adds_to_every_cell_across_statement_sizes(db, eva, cells):
    from relata.decisions.sync import _write_stats

    with db.session() as s:
        from relata.decisions import offers
        from relata.decisions.schemas import OfferWrite

        write = OfferWrite(key="a", name="A", channels=["web"], value=1)
        offer_id = offers.create_offer(s, write, Settings(database_url=db.url)).id
    counts = {(offer_id, c): [1.0 + c, float(c % 2), f"cell {c}"] for c in range(cells)}
    for version in (1, 2):  # the second adds to what the first wrote
        with db.session() as s:
            _write_stats(s, counts, 1000.0 + version, version)
    with db.session(write=False) as s:
        found = {r.cell: r for r in s.scalars(select(DecisionStat))}
    assert sorted(found) == list(range(cells))
    for c, row in found.items():
        assert (row.shows, row.wins, row.label) == (2 * (1.0 + c), 2.0 * (c % 2), f"cell {c}")
        assert (row.at, row.version) == (1002.0, 2)


def test_one_writer_a_database_a_process(db):
    from relata.writer import shared

    other = Database(db.url)
    try:
        assert shared(db) is shared(db) and shared(other) is not shared(db)
    finally:
        other.dispose()


def test_erasing_a_customer_removes_their_decisions(client, db, settings, eva):
    from relata.consent.erasure import erase

    offer(client, "shoes")
    made = decide(client, customer_id=eva, channel="web")
    client.post(
        f"/v1/decisions/{made['decision_id']}/responses", json={"offer": "shoes", "type": "accept"}
    )
    with db.session() as s:
        erase(s, eva, settings)
    with db.session(write=False) as s:
        assert s.scalar(select(func.count()).select_from(Decision)) == 0
        assert s.scalar(select(func.count()).select_from(DecisionResponse)) == 0
    # The learning ledger holds no one: what was learned stays.
    with db.session() as s:
        assert sync.fold(s, 30) == 2
    assert decide(client, customer_id=eva, channel="web", expect=404)


def test_the_group_commit_writer_isolates_a_failing_job(db, settings, eva):
    import threading

    from sqlalchemy import text

    from relata.writer import Writer

    writer = Writer(db)
    results: dict[int, object] = {}

    def job(i: int):
        def fn(session):
            if i == 3:
                raise ValueError("bad job")
            session.execute(
                text(
                    "INSERT INTO contact_policies (name, kind, channels, active, version, "
                    "created_at, updated_at) VALUES (:n, 'suppress', '[]', true, 1, "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"n": f"p{i}"},
            )
            return i

        try:
            results[i] = writer.run(fn)
        except ValueError as exc:
            results[i] = str(exc)

    threads = [threading.Thread(target=job, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.stop()
    assert results[3] == "bad job"
    assert {k: v for k, v in results.items() if k != 3} == {i: i for i in range(8) if i != 3}
    with db.session(write=False) as s:
        names = set(s.scalars(text("SELECT name FROM contact_policies")))
    assert names == {f"p{i}" for i in range(8) if i != 3}


def test_the_writer_inserts_a_batch_s_deferred_rows_together_and_a_bad_job_fails_alone(db):
    import threading
    from datetime import UTC, datetime

    from relata.auth import audit
    from relata.db import defer_insert
    from relata.writer import Writer

    writer = Writer(db)
    gate = threading.Event()
    blocker = writer.submit(lambda session: gate.wait(10))  # holds the writer: a batch queues
    at = datetime(2026, 12, 3, tzinfo=UTC)

    def job(i: int):
        def fn(session):
            row = audit.AuditRecord(at, "api_key", i, f"k{i}", "change", "POST", "/x", None, 200)
            audit.record(session, row)
            if i == 3:  # its row was gathered already: the batch must not keep it
                raise ValueError("bad job")
            return i

        return fn

    futures = [writer.submit(job(i)) for i in range(8)]
    gate.set()
    assert blocker.result(10) is True
    assert [f.exception(10) is None for f in futures] == [i != 3 for i in range(8)]
    writer.stop()
    with db.session(write=False) as s:
        names = sorted(e.actor_name for e in audit.entries(s))
    assert names == sorted(f"k{i}" for i in range(8) if i != 3)
    with db.session() as s:  # outside a writer the row is inserted at once
        defer_insert(
            s,
            audit.AuditEntry.__table__,
            ["at", "actor_kind", "actor_id", "actor_name", "action", "method", "route", "status"],
            [(at, "user", 9, "direct", "read", "GET", "/y", 200)],
        )
        assert "direct" in {e.actor_name for e in audit.entries(s)}


def test_an_offer_rule_can_name_a_segment_and_follows_its_changes(client, db, settings, eva):
    from relata.segments import service as segments
    from relata.segments.fields import REGISTRY
    from relata.segments.rules import check_text

    with db.session() as s:
        segments.create(s, "Stammkunden", check_text("age > 90", REGISTRY))
    offer(client, "loyal", rule='in segment "Stammkunden"')
    assert (
        decide(client, customer_id=eva, channel="web", explain=True)["considered"][0]["code"]
        == "rule"
    )
    with db.session() as s:
        segments.update(s, "Stammkunden", check_text("age > 30", REGISTRY))
    assert keys(decide(client, customer_id=eva, channel="web")) == ["loyal"]


def test_forward_decay_weighs_a_show_by_its_age(db, settings, eva):
    """Two folds a half-life apart: the older show is worth half of the newer one, now."""
    import time as clock
    from datetime import UTC, datetime, timedelta

    from relata.decisions import loader
    from relata.decisions.catalogue import Catalogue, OfferSpec
    from relata.decisions.models import DecisionOutcome, new_decision_id

    def show(days_ago: float) -> None:
        at = datetime.now(UTC) - timedelta(days=days_ago)
        with db.session() as s:
            s.add(
                DecisionOutcome(
                    decision_id=new_decision_id(),
                    offer_id=1,
                    kind="show",
                    channel="web",
                    control=False,
                    labels=[""],
                    cost=0.0,
                    occurred_at=at,
                    folded=False,
                )
            )
        with db.session() as s:
            sync.fold(s, 30)

    show(30)
    show(0)
    with db.session(write=False) as s:
        landmark = loader.versions(s)[3]
        cat = Catalogue.build(1, [OfferSpec(1, "a", "A", "product", 1, frozenset({"web"}))], [])
        stats = loader.stats(s, cat, 30, landmark)
    assert abs(landmark - clock.time()) < 120
    assert stats.arrays(0)[0][0] == pytest.approx(1.5, rel=1e-3)


def test_the_fold_reads_unfolded_outcomes_through_the_partial_index(db):
    """`folded IS 0` would scan the whole (ever growing) table every second."""
    from sqlalchemy import text

    from relata.decisions.models import DecisionOutcome as o

    stmt = select(o.id).where(~o.folded).order_by(o.id).limit(10)
    with db.session(write=False) as s:
        sql = str(stmt.compile(s.get_bind(), compile_kwargs={"literal_binds": True}))
        if db.is_sqlite:
            plan = " ".join(str(r) for r in s.execute(text("EXPLAIN QUERY PLAN " + sql)))
        else:
            s.execute(text("SET LOCAL enable_seqscan = off"))
            plan = " ".join(r[0] for r in s.execute(text("EXPLAIN " + sql)))
    assert "ix_decision_outcomes_unfolded" in plan, plan
