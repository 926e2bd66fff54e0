"""Consent, permissions, export and rectification over HTTP: answers, and bad input refused."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from relata.consent.erasure import erase
from relata.consent.models import ConsentToken
from relata.db import utcnow
from relata.events.models import Event
from relata.identity import service as identity
from tests.helpers import make_source, put, rec


@pytest.fixture
def customers(db, settings) -> tuple[int, int]:
    make_source(db, "shop", trust=60)
    done = put(
        db,
        settings,
        "shop",
        rec(
            "K1",
            first_name="Jürgen",
            last_name="Müller",
            email="jm@example.de",
            city="Köln",
            postcode="50667",
            street="Hauptstr.",
            house_number="5",
        ),
        rec("K2", first_name="Eva", last_name="Berg", email="eva@example.de"),
    )
    return done.customer_of["K1"], done.customer_of["K2"]


def permission(client, cid: int, purpose="marketing", channel="email") -> dict:
    response = client.get(f"/v1/customers/{cid}/permissions?purpose={purpose}&channel={channel}")
    assert response.status_code == 200, response.text
    [row] = response.json()
    return row


def test_grant_revoke_and_the_permission_check(client, customers):
    a, _ = customers
    assert permission(client, a) == {
        "purpose": "marketing",
        "channel": "email",
        "allowed": False,
        "status": "unknown",
        "since": None,
        "entry_id": None,
    }
    body = {
        "purpose": "marketing",
        "channel": "email",
        "action": "grant",
        "text_version": "Newsletter v3",
        "evidence": {"form": "checkout"},
    }
    created = client.post(f"/v1/customers/{a}/consents", json=body, headers={"user-agent": "t/1"})
    assert created.status_code == 201, created.text
    entry = created.json()
    evidence = entry["evidence"]
    assert (evidence["form"], evidence["ip"], evidence["user_agent"]) == (
        "checkout",
        "testclient",
        "t/1",
    )
    assert evidence["user"]  # who recorded it: the caller, not what the body claims
    assert permission(client, a)["allowed"] is True
    client.post(f"/v1/customers/{a}/consents", json={**body, "action": "revoke"})
    assert permission(client, a)["status"] == "revoked"
    full = client.get(f"/v1/customers/{a}/consents").json()
    assert [e["action"] for e in full["ledger"]] == ["grant", "revoke"]
    assert len(full["permissions"]) == 4 * 6  # every purpose × channel
    assert client.get(f"/v1/customers/{a}/consents/{entry['id']}").json()["id"] == entry["id"]


def test_another_customers_entry_is_not_found_and_shows_nothing(client, customers):
    a, b = customers
    body = {"purpose": "marketing", "channel": "sms", "action": "grant", "text_version": "secret"}
    entry = client.post(f"/v1/customers/{a}/consents", json=body).json()
    response = client.get(f"/v1/customers/{b}/consents/{entry['id']}")
    assert response.status_code == 404
    assert "secret" not in response.text and "sms" not in response.text


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("consents", {"purpose": "spam", "channel": "email", "action": "grant"}, 422),
        ("consents", {"purpose": "marketing", "channel": "fax", "action": "grant"}, 422),
        ("consents", {"purpose": "marketing", "channel": "email", "action": "maybe"}, 422),
        ("consents", {"purpose": "marketing", "channel": "email"}, 422),
        ("consents", {"purpose": "marketing\x00", "channel": "email", "action": "grant"}, 422),
        (
            "consents",
            {
                "purpose": "marketing",
                "channel": "email",
                "action": "grant",
                "occurred_at": "2026-01-01T10:00:00",
            },
            422,
        ),
        (
            "consents",
            {"purpose": "marketing", "channel": "email", "action": "grant", "extra": 1},
            422,
        ),
        ("consents", [], 422),
        ("consents/opt-in", {"purpose": "nope"}, 422),
        ("unsubscribe-links", {"channel": "pigeon"}, 422),
    ],
)
def test_bad_input_is_a_4xx_with_a_message(client, customers, path, body, status):
    a, _ = customers
    response = client.post(f"/v1/customers/{a}/{path}", json=body)
    assert response.status_code == status, response.text
    assert response.json()["detail"]


@pytest.mark.parametrize("cid", ["0", "-1", "abc", str(2**63), "999999"])
def test_unknown_customers_are_404_or_422(client, customers, cid):
    for response in (
        client.get(f"/v1/customers/{cid}/permissions"),
        client.get(f"/v1/customers/{cid}/export"),
        client.post(
            f"/v1/customers/{cid}/consents",
            json={"purpose": "marketing", "channel": "email", "action": "grant"},
        ),
    ):
        assert response.status_code in (404, 422), response.text


def test_a_merged_away_id_redirects_to_the_survivor(client, db, customers):
    a, b = customers
    with db.session() as session:
        identity.merge(session, a, b, "test")
    response = client.get(f"/v1/customers/{b}/permissions", follow_redirects=False)
    assert response.status_code == 308
    assert response.headers["location"] == f"/v1/customers/{a}/permissions"


def test_an_erased_customer_is_gone(client, db, settings, customers):
    a, _ = customers
    with db.session() as session:
        erase(session, a, settings)
    for response in (
        client.get(f"/v1/customers/{a}/permissions"),
        client.get(f"/v1/customers/{a}/export"),
        client.patch(f"/v1/customers/{a}", json={"last_name": "X"}),
    ):
        assert response.status_code == 410
        assert "Müller" not in response.text


def test_double_opt_in_over_the_api_and_the_public_page(client, customers):
    a, _ = customers
    created = client.post(f"/v1/customers/{a}/consents/opt-in", json={"text_version": "NL-4"})
    assert created.status_code == 201, created.text
    path = created.json()["confirm_path"]
    assert permission(client, a)["status"] == "pending"
    page = client.get(path + "?lang=en")
    assert page.status_code == 200
    assert "Subscription confirmed" in page.text and "Marketing" in page.text
    assert "jm@example.de" not in page.text and "Müller" not in page.text
    assert page.headers["cache-control"] == "no-store"
    assert permission(client, a)["allowed"] is True
    replay = client.get(path)
    assert replay.status_code == 410 and "used already" in replay.text  # the language stays


def test_an_expired_confirmation_page_is_410(client, db, customers):
    a, _ = customers
    path = client.post(f"/v1/customers/{a}/consents/opt-in", json={}).json()["confirm_path"]
    with db.session() as session:
        session.execute(update(ConsentToken).values(expires_at=utcnow()))
    page = client.get(path + "?lang=en")
    assert page.status_code == 410 and "expired" in page.text
    assert permission(client, a)["status"] == "pending"


@pytest.mark.parametrize(
    "token", ["x" * 43, "abc", "%00" * 20, "a" * 500, "a.b", "eyJ1IjoxfQ.AAAAAAAAAAAAAAAAAAAAAA"]
)
def test_wrong_tokens_are_404_pages_that_name_nobody(client, customers, token):
    for kind in ("confirm", "unsubscribe"):
        page = client.get(f"/c/{kind}/{token}")
        assert page.status_code == 404, (kind, token, page.text)
        assert "Link ungültig" in page.text


def test_the_unsubscribe_link_revokes_with_one_click_in_both_languages(client, customers):
    a, _ = customers
    client.post(
        f"/v1/customers/{a}/consents",
        json={"purpose": "marketing", "channel": "email", "action": "grant"},
    )
    link = client.post(f"/v1/customers/{a}/unsubscribe-links", json={})
    assert link.status_code == 201
    path = link.json()["unsubscribe_path"]
    page = client.get(path)
    assert page.status_code == 200 and "Abgemeldet" in page.text and "Werbung" in page.text
    assert permission(client, a)["status"] == "revoked"
    again = client.post(path + "?lang=en")  # RFC 8058 one-click, and a second time
    assert again.status_code == 200 and "Unsubscribed" in again.text
    ledger = client.get(f"/v1/customers/{a}/consents").json()["ledger"]
    assert [e["action"] for e in ledger] == ["grant", "revoke"]


def test_the_export_endpoint(client, customers):
    a, _ = customers
    doc = client.get(f"/v1/customers/{a}/export").json()
    assert doc["customer_id"] == a and doc["golden_record"]["last_name"] == "Müller"
    assert "eva@example.de" not in str(doc)


def test_rectification_is_a_source_record_with_provenance_and_a_timeline_event(
    client, db, customers
):
    a, _ = customers
    response = client.patch(
        f"/v1/customers/{a}", json={"last_name": "Müller-Lüdenscheidt", "reason": "letter"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["changes"] == {
        "last_name": {"from": "Müller", "to": "Müller-Lüdenscheidt"}
    }
    view = client.get(f"/v1/customers/{a}").json()
    assert view["customer"]["last_name"] == "Müller-Lüdenscheidt"
    assert view["customer"]["provenance"]["last_name"]["source"] == "rectification"
    assert view["customer"]["first_name"] == "Jürgen"  # the rest untouched
    [event] = [e for e in view["timeline"]["events"] if e["name"] == "Customer Rectified"]
    assert event["properties"]["reason"] == "letter"
    # A corrected city alone still wins: the correction carries the whole address.
    client.patch(f"/v1/customers/{a}", json={"city": "Bonn", "postcode": "53111"})
    customer = client.get(f"/v1/customers/{a}").json()["customer"]
    assert (customer["city"], customer["postcode"], customer["street"]) == (
        "Bonn",
        "53111",
        "Hauptstraße",
    )
    with db.session(write=False) as session:
        names = session.scalars(select(Event.name).where(Event.customer_id == a)).all()
    assert names.count("Customer Rectified") == 2


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"reason": "nothing"},
        {"shoe_size": "44"},
        {"birth_date": "31.02.1980"},
        {"email": "not-an-address"},
        {"last_name": ""},
        {"last_name": 5},
        {"last_name": "A\x00B"},
    ],
)
def test_bad_corrections_are_refused(client, customers, body):
    a, _ = customers
    response = client.patch(f"/v1/customers/{a}", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]
    assert client.get(f"/v1/customers/{a}").json()["customer"]["last_name"] == "Müller"
