"""Consent through the event API, and the visitor's cookie choice on web events."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from relata.consent import service as consent
from relata.events.models import Event
from relata.ingest.models import QuarantineEntry


def send(client, *messages: dict, source: str | None = None):
    body: dict = {"batch": list(messages)}
    if source:
        body["source"] = source
    return client.post("/v1/events", json=body)


def customer_of(client, user: str) -> int:
    response = send(client, {"type": "identify", "userId": user, "traits": {"firstName": "A"}})
    return response.json()["customers"][0]


def test_consent_events_write_the_ledger(client, db, settings):
    cid = customer_of(client, "u1")
    response = send(
        client,
        {
            "type": "track",
            "userId": "u1",
            "event": "Consent Granted",
            "messageId": "c1",
            "timestamp": "2026-02-01T10:00:00Z",
            "context": {"ip": "203.0.113.5"},
            "properties": {"purpose": "marketing", "channel": "email", "text_version": "v2"},
        },
        {
            "type": "track",
            "userId": "u1",
            "event": "Consent Revoked",
            "messageId": "c2",
            "timestamp": "2026-02-02T10:00:00Z",
            "properties": {"purpose": "marketing", "channel": "sms"},
        },
    )
    assert response.status_code == 202, response.text
    with db.session(write=False) as session:
        ledger = consent.entries(session, cid)
        assert consent.may_use(session, cid, "marketing", "email", settings)
        assert not consent.may_use(session, cid, "marketing", "sms", settings)
    first = ledger[0]
    assert (first.via, first.source, first.source_key, first.text_version) == (
        "event",
        "web",
        "c1",
        "v2",
    )
    assert first.evidence["ip"] == "203.0.113.5"
    # The same message again is a duplicate: no second entry.
    send(
        client,
        {
            "type": "track",
            "userId": "u1",
            "event": "Consent Granted",
            "messageId": "c1",
            "properties": {"purpose": "marketing", "channel": "email"},
        },
    )
    with db.session(write=False) as session:
        assert len(consent.entries(session, cid)) == 2


@pytest.mark.parametrize(
    ("properties", "field"),
    [
        ({"channel": "email"}, "properties.purpose"),
        ({"purpose": "Marketing!", "channel": "email"}, "properties.purpose"),
        ({"purpose": "marketing", "channel": "fax"}, "properties.channel"),
        (
            {"purpose": "marketing", "channel": "email", "text_version": 3},
            "properties.text_version",
        ),
    ],
)
def test_malformed_consent_events_are_refused_at_the_door(client, properties, field):
    response = send(
        client,
        {"type": "track", "userId": "u1", "event": "Consent Granted", "properties": properties},
    )
    assert response.status_code == 422
    assert field in response.json()["detail"]


def test_consent_for_an_unknown_purpose_is_quarantined_and_the_rest_stored(client, db):
    response = send(
        client,
        {
            "type": "track",
            "userId": "u1",
            "event": "Consent Granted",
            "messageId": "q1",
            "properties": {"purpose": "lottery", "channel": "email"},
        },
        {"type": "track", "userId": "u1", "event": "Viewed", "messageId": "q2"},
    )
    assert response.status_code == 202
    assert (response.json()["accepted"], response.json()["quarantined"]) == (1, 1)
    with db.session(write=False) as session:
        [entry] = session.scalars(select(QuarantineEntry)).all()
    assert "unknown purpose 'lottery'" in entry.reason and '"q1"' in entry.raw


def profiling_of(db, message_id: str) -> bool:
    with db.session(write=False) as session:
        return session.scalar(select(Event.profiling).where(Event.message_id == message_id))


def test_web_events_are_used_for_profiling_only_with_the_visitors_consent(client, db):
    def page(mid: str, **context):
        return {"type": "page", "anonymousId": "v1", "messageId": mid, "context": context}

    yes = {"consent": {"categoryPreferences": {"Personalisation": True, "Advertising": False}}}
    no = {"consent": {"categoryPreferences": {"Personalisierung": False, "Analytics": True}}}
    response = send(client, page("p1", **yes), page("p2", **no), page("p3"))
    assert response.status_code == 202
    assert [profiling_of(db, m) for m in ("p1", "p2", "p3")] == [True, False, False]
    # Stored all the same, with the choice, for the purposes allowed.
    with db.session(write=False) as session:
        context = session.scalar(select(Event.context).where(Event.message_id == "p2"))
    assert context["consent"]["categoryPreferences"]["Analytics"] is True


def test_server_events_without_a_banner_choice_leave_it_to_the_ledger(client, db):
    client.post("/v1/sources", json={"name": "shop", "channel": "shop", "trust": 50})
    send(
        client,
        {
            "type": "track",
            "userId": "k1",
            "event": "Order Completed",
            "messageId": "o1",
            "properties": {"order_id": "O1"},
        },
        source="shop",
    )
    assert profiling_of(db, "o1") is True


@pytest.mark.parametrize(
    "consent_state",
    ["yes", {"categoryPreferences": "all"}, {"categoryPreferences": {"Personalisation": "yes"}}],
)
def test_a_malformed_cookie_choice_is_refused(client, consent_state):
    response = send(
        client, {"type": "page", "anonymousId": "v1", "context": {"consent": consent_state}}
    )
    assert response.status_code == 422
    assert "context.consent" in response.json()["detail"]
