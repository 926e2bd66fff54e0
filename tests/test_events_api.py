"""POST /v1/events and the 360° view over HTTP, on both databases."""

from __future__ import annotations

from sqlalchemy import func, select

from relata.events.models import Event
from tests.helpers import make_source, put, rec


def post(client, payload, status=202):
    response = client.post("/v1/events", json=payload)
    assert response.status_code == status, response.text
    return response.json()


def count(db, model) -> int:
    with db.session(write=False) as s:
        return s.scalar(select(func.count()).select_from(model))


def test_the_same_message_twice_is_stored_once(client, db):
    msg = {"type": "track", "anonymousId": "a1", "event": "Product Viewed", "messageId": "m1"}
    assert post(client, msg)["accepted"] == 1
    again = post(client, {"batch": [msg, msg]})
    assert (again["accepted"], again["duplicates"]) == (0, 2)
    assert count(db, Event) == 1


def test_messages_without_message_id_are_idempotent_by_content(client, db):
    msg = {
        "type": "page",
        "anonymousId": "a1",
        "name": "Start",
        "timestamp": "2026-01-01T10:00:00Z",
    }
    post(client, [msg])
    post(client, [msg])
    assert count(db, Event) == 1


def test_an_anonymous_visitor_who_identifies_brings_the_history_along(client, db, settings):
    make_source(db, "shop", trust=80)
    shop = put(
        db, settings, "shop", rec("K1", first_name="Eva", last_name="Öztürk", email="eva@web.de")
    )
    known = shop.customer_of["K1"]
    visits = [
        {
            "type": "page",
            "anonymousId": "v-1",
            "name": f"P{i}",
            "messageId": f"p{i}",
            "timestamp": f"2026-03-0{i + 1}T10:00:00Z",
        }
        for i in range(3)
    ]
    anonymous = post(client, {"batch": visits})["customers"]
    assert len(anonymous) == 1 and anonymous[0] != known
    post(
        client,
        {
            "type": "identify",
            "anonymousId": "v-1",
            "userId": "W7",
            "traits": {"email": "EVA@web.de", "firstName": "Eva"},
            "messageId": "i1",
        },
    )
    view = client.get(f"/v1/customers/{known}").json()
    names = [e["name"] for e in view["timeline"]["events"] if e["type"] == "page"]
    assert names == ["P2", "P1", "P0"]  # newest first, all three moved along
    # The anonymous profile's id now answers with the known customer.
    moved = client.get(f"/v1/customers/{anonymous[0]}", follow_redirects=False)
    assert moved.status_code == 308
    assert moved.headers["location"] == f"/v1/customers/{known}"
    # Later anonymous events of the same browser land on the known customer too.
    later = post(client, {"type": "page", "anonymousId": "v-1", "name": "P9", "messageId": "p9"})
    assert later["customers"] == [known]


def test_orders_and_contracts_are_holdings(client, db):
    order = {
        "type": "track",
        "userId": "K5",
        "event": "Order Completed",
        "messageId": "o1",
        "timestamp": "2026-05-01T09:00:00Z",
        "properties": {
            "order_id": "O-1",
            "currency": "eur",
            "products": [
                {
                    "product_id": "SKU-1",
                    "name": "Laufschuh",
                    "category": "Schuhe",
                    "price": 89.9,
                    "quantity": 2,
                },
                {"product_id": "SKU-2", "name": "Socken", "price": "4.50"},
            ],
        },
    }
    cid = post(client, order)["customers"][0]
    # The same order under another messageId is still one order.
    post(client, {**order, "messageId": "o1-retry"})
    post(
        client,
        {
            "type": "track",
            "userId": "K5",
            "event": "Contract Signed",
            "messageId": "c1",
            "properties": {
                "contract_id": "V-1",
                "product_name": "Premium",
                "amount": 9.99,
                "currency": "EUR",
                "start_date": "2026-01-01",
            },
        },
    )
    holdings = client.get(f"/v1/customers/{cid}/holdings").json()
    assert holdings["total"] == 3
    shoes = next(h for h in holdings["items"] if h["product_id"] == "SKU-1")
    assert float(shoes["amount"]) == 179.8 and shoes["currency"] == "EUR"
    post(
        client,
        {
            "type": "track",
            "userId": "K5",
            "event": "Contract Cancelled",
            "messageId": "c2",
            "properties": {"contract_id": "V-1", "end_date": "2026-06-30"},
        },
    )
    items = client.get(f"/v1/customers/{cid}/holdings").json()["items"]
    contract = next(h for h in items if h["kind"] == "contract")
    assert contract["status"] == "ended" and contract["ended_at"].startswith("2026-06-30")


def test_malformed_payloads_are_refused_with_the_field_and_nothing_is_stored(client, db):
    cases = [
        ({"type": "track", "event": "X"}, "userId or anonymousId"),
        ({"type": "shout", "anonymousId": "a"}, "type"),
        (
            {"type": "track", "anonymousId": "a", "event": "X", "timestamp": "yesterday"},
            "timestamp",
        ),
        (
            {
                "batch": [
                    {"type": "page", "anonymousId": "a"},
                    {
                        "type": "track",
                        "anonymousId": "a",
                        "event": "Order Completed",
                        "properties": {"order_id": "O", "products": [{"price": "cheap"}]},
                    },
                ]
            },
            "batch.1",
        ),
        (
            {"type": "track", "anonymousId": "a", "event": "Order Completed", "properties": {}},
            "order_id",
        ),
        ({"type": "alias", "userId": "u"}, "previousId"),
        ([], "batch"),
        ("just text", "body"),
    ]
    for payload, needle in cases:
        response = client.post("/v1/events", json=payload)
        assert response.status_code == 422, (payload, response.text)
        assert needle in response.json()["detail"], (needle, response.json())
    assert count(db, Event) == 0


def test_an_unknown_source_is_refused(client):
    response = client.post(
        "/v1/events", json={"type": "page", "anonymousId": "a", "source": "nope"}
    )
    assert response.status_code == 422
    assert "unknown source" in response.json()["detail"]


def test_alias_joins_two_user_ids(client, db):
    a = post(client, {"type": "identify", "userId": "old", "traits": {"lastName": "Ilić"}})[
        "customers"
    ][0]
    b = post(client, {"type": "identify", "userId": "new", "traits": {"lastName": "Ilić"}})[
        "customers"
    ][0]
    assert a != b
    post(client, {"type": "alias", "previousId": "old", "userId": "new"})
    assert client.get(f"/v1/customers/{b}", follow_redirects=False).status_code == 308


def test_timeline_pages_newest_first_with_a_cursor(client):
    events = [
        {
            "type": "track",
            "anonymousId": "t",
            "event": f"E{i:02d}",
            "messageId": f"e{i}",
            "timestamp": f"2026-02-{i + 1:02d}T08:00:00Z",
        }
        for i in range(25)
    ]
    cid = post(client, {"batch": events})["customers"][0]
    seen, cursor = [], None
    while True:
        params = {"page_size": 10} | ({"before": cursor} if cursor else {})
        page = client.get(f"/v1/customers/{cid}/timeline", params=params).json()
        seen += [e["name"] for e in page["events"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"E{i:02d}" for i in reversed(range(25))]
    assert (
        client.get(f"/v1/customers/{cid}/timeline", params={"before": "garbage"}).status_code == 422
    )


def test_search_finds_by_name_email_phone_and_number(client, db, settings):
    make_source(db, "shop")
    r = put(
        db,
        settings,
        "shop",
        rec(
            "K1",
            first_name="Jürgen",
            last_name="Müller",
            email="j.mueller@t-online.de",
            phone="+4917112345678",
            customer_number="100200",
        ),
    )
    cid = r.customer_of["K1"]
    for q in ["müller", "Mueller", "jürgen mü", "J.Mueller@T-Online.de", "0171 12345678", "100200"]:
        found = client.get("/v1/customers", params={"q": q}).json()
        assert [c["id"] for c in found] == [cid], q
    assert client.get("/v1/customers", params={"q": "schmidt"}).json() == []
    assert client.get("/v1/customers", params={"q": ""}).status_code == 422


def test_unknown_customer_is_404(client):
    assert client.get("/v1/customers/999999").status_code == 404
    assert client.get("/v1/customers/abc").status_code == 422


def test_health(client):
    assert client.get("/health").json()["status"] == "ok"


def test_hostile_ids_cursors_and_nul_characters_get_4xx_not_500(client):
    import base64

    cid = post(client, {"type": "page", "anonymousId": "n", "name": "x"})["customers"][0]
    naive = base64.urlsafe_b64encode(b"2026-11-20T10:00:00|5").decode()
    huge = base64.urlsafe_b64encode(b"2026-11-20T10:00:00+00:00|99999999999999999999").decode()
    for url in [
        f"/v1/customers/{cid}?before={naive}",
        f"/v1/customers/{cid}/timeline?before={huge}",
        "/v1/customers/99999999999999999999999",
        "/v1/merges?customer_id=99999999999999999999999",
    ]:
        response = client.get(url)
        assert 400 <= response.status_code < 500, (url, response.status_code)
    assert client.post("/v1/merges/99999999999999999999999/undo").status_code == 422
    assert client.post("/v1/merges/12345/undo").status_code == 404
    assert client.get("/v1/customers", params={"q": "\x00abc"}).status_code == 200
    bad = client.post("/v1/events", json={"type": "page", "anonymousId": "a", "name": "x\x00y"})
    assert bad.status_code == 422 and "name" in bad.json()["detail"]


def test_unmerge_gives_the_anonymous_history_back(client, db, settings):
    make_source(db, "shop", trust=80)
    known = put(db, settings, "shop", rec("K1", last_name="Öztürk", email="e@web.de")).customer_of[
        "K1"
    ]
    anonymous = post(
        client,
        {
            "batch": [
                {"type": "page", "anonymousId": "v-9", "name": f"P{i}", "messageId": f"q{i}"}
                for i in range(3)
            ]
        },
    )["customers"][0]
    post(
        client,
        {
            "type": "identify",
            "anonymousId": "v-9",
            "userId": "W1",
            "traits": {"email": "e@web.de"},
            "messageId": "i9",
        },
    )
    merges = client.get("/v1/merges", params={"customer_id": known}).json()
    assert [(m["survivor_id"], m["merged_id"]) for m in merges] == [(known, anonymous)]
    undone = client.post(f"/v1/merges/{merges[0]['id']}/undo")
    assert undone.status_code == 200 and undone.json()["restored_id"] == anonymous
    pages = client.get(f"/v1/customers/{anonymous}/timeline").json()["events"]
    assert sorted(e["name"] for e in pages if e["type"] == "page") == ["P0", "P1", "P2"]
    mine = client.get(f"/v1/customers/{known}/timeline").json()["events"]
    assert not [e for e in mine if e["type"] == "page"]
    assert any(e["name"] == "Customer Unmerged" for e in mine)


def test_concurrent_event_batches_on_shared_visitors_do_not_deadlock(db, settings):
    import random
    import threading

    from pydantic import TypeAdapter

    from relata.events import service
    from relata.events.schemas import Message

    adapter = TypeAdapter(Message)

    def batch(seed: int, n: int) -> list:
        rnd = random.Random(seed)
        out = []
        for i in range(40):
            a, u = f"anon-{rnd.randrange(15)}", f"U{rnd.randrange(8)}"
            if rnd.random() < 0.3:
                raw = {
                    "type": "identify",
                    "userId": u,
                    "anonymousId": a,
                    "traits": {"email": f"{u.lower()}@x.de"},
                }
            else:
                raw = {"type": "track", "anonymousId": a, "event": "Viewed"}
            out.append(adapter.validate_python({**raw, "messageId": f"{seed}-{n}-{i}"}))
        return out

    errors: list[BaseException] = []

    def post_many(seed: int) -> None:
        try:
            for n in range(8):
                with db.session() as s:
                    service.ingest(s, batch(seed, n), settings)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=post_many, args=(seed,)) for seed in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    with db.session(write=False) as s:
        from relata.identity.models import Identifier

        owners = s.execute(
            select(Identifier.value, func.count(func.distinct(Identifier.customer_id)))
            .where(Identifier.kind == "anonymous_id")
            .group_by(Identifier.value)
        ).all()
    assert owners and all(n == 1 for _, n in owners)


def test_resolve_ids_follows_merge_chains(db, settings):
    from relata.identity import service as identity

    make_source(db, "shop")
    ids = [
        put(db, settings, "shop", rec(f"K{i}", last_name="X", customer_number=f"N{i}")).customer_of[
            f"K{i}"
        ]
        for i in range(3)
    ]
    with db.session() as s:
        identity.merge(s, ids[1], ids[2], "test")
        identity.merge(s, ids[0], ids[1], "test")
    with db.session(write=False) as s:
        assert identity.resolve_ids(s, ids) == {ids[0]: ids[0], ids[1]: ids[0], ids[2]: ids[0]}


def test_alias_from_an_earlier_user_id_is_not_kept_as_a_visitor_id(client, db):
    from relata.identity.models import Identifier

    post(client, {"type": "identify", "userId": "old", "traits": {"lastName": "Ilić"}})
    post(client, {"type": "alias", "previousId": "old", "userId": "new"})
    post(client, {"type": "alias", "previousId": "visitor-1", "userId": "new"})
    with db.session(write=False) as s:
        anonymous = set(
            s.scalars(select(Identifier.value).where(Identifier.kind == "anonymous_id"))
        )
    assert anonymous == {"visitor-1"}


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def test_a_deadlocked_batch_is_run_again_and_a_lost_database_is_503(client, db, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from relata.events import service

    real = service.ingest
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OperationalError("INSERT …", {}, _PgError("40P01"))
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "ingest", flaky)
    assert post(client, {"type": "page", "anonymousId": "d", "messageId": "d1"})["accepted"] == 1
    assert calls["n"] == 2 and count(db, Event) == 1

    def down(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, _PgError("08006"))

    monkeypatch.setattr(service, "ingest", down)
    response = client.post(
        "/v1/events", json={"type": "page", "anonymousId": "d", "messageId": "d2"}
    )
    assert response.status_code == 503 and "unavailable" in response.json()["detail"]
