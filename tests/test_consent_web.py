"""The consent panel on the 360° view: the state, grant and revoke, corrections, bad posts."""

from __future__ import annotations

import re

import pytest

from tests.helpers import make_source, put, rec


@pytest.fixture
def customer(db, settings) -> int:
    make_source(db, "shop", trust=60)
    done = put(db, settings, "shop", rec("K1", first_name="Jürgen", last_name="Müller"))
    return done.customer_of["K1"]


def cell(page: str, purpose: str, channel: str) -> str:
    found = re.search(rf'id="consent-{purpose}-{channel}"><span class="status status-(\w+)"', page)
    assert found, f"no cell for {purpose}/{channel}"
    return found.group(1)


def post(client, path: str, data: dict, **headers: str):
    return client.post(path, data=data, headers=headers, follow_redirects=False)


def test_the_panel_shows_every_purpose_and_channel_in_both_languages(client, customer):
    page = client.get(f"/customers/{customer}?lang=de").text
    assert "Einwilligungen" in page and "Weitergabe an Dritte" in page and "keine Angabe" in page
    assert cell(page, "marketing", "email") == "unknown"
    english = client.get(f"/customers/{customer}?lang=en").text
    assert "Third-party sharing" in english and "Record a grant or revocation" in english


def test_grant_and_revoke_from_the_panel(client, customer):
    form = {"purpose": "marketing", "channel": "email", "action": "grant", "note": "call"}
    done = post(client, f"/customers/{customer}/consents", form)
    assert done.status_code == 303
    assert done.headers["location"] == f"/customers/{customer}?consent=saved#consent"
    page = client.get(done.headers["location"]).text
    assert cell(page, "marketing", "email") == "granted"
    assert "Die Einwilligung wurde gespeichert." in page
    post(client, f"/customers/{customer}/consents", {**form, "action": "revoke"})
    page = client.get(f"/customers/{customer}").text
    assert cell(page, "marketing", "email") == "revoked"
    entry = client.get(f"/v1/customers/{customer}/consents").json()["ledger"][0]
    assert entry["via"] == "ui" and entry["evidence"]["note"] == "call"


@pytest.mark.parametrize(
    ("data", "status"),
    [
        ({"purpose": "spam", "channel": "email", "action": "grant"}, 422),
        ({"purpose": "marketing", "channel": "email", "action": "delete"}, 422),
        ({"purpose": "marketing", "channel": "email"}, 422),
        ({"purpose": "marketing", "channel": "email", "action": "grant", "note": "x" * 501}, 422),
        ({"purpose": "marketing\x00", "channel": "email", "action": "grant"}, 422),
    ],
)
def test_bad_panel_posts_are_pages_not_errors(client, customer, data, status):
    response = post(client, f"/customers/{customer}/consents", data)
    assert response.status_code == status
    assert "<html" in response.text and "Nicht gespeichert" in response.text


@pytest.mark.parametrize("cid", ["0", "abc", "99999", str(2**64)])
def test_a_post_for_an_unknown_customer_is_a_404_page(client, customer, cid):
    form = {"purpose": "marketing", "channel": "email", "action": "grant"}
    response = post(client, f"/customers/{cid}/consents", form)
    assert response.status_code == 404 and "Diesen Kunden gibt es nicht." in response.text


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://evil.example"},
        {"sec-fetch-site": "cross-site"},
        {"origin": "null"},
    ],
)
def test_a_form_posted_from_another_site_is_refused(client, customer, headers):
    form = {"purpose": "marketing", "channel": "email", "action": "grant"}
    response = post(client, f"/customers/{customer}/consents", form, **headers)
    assert response.status_code == 403
    assert cell(client.get(f"/customers/{customer}").text, "marketing", "email") == "unknown"
    same = post(
        client,
        f"/customers/{customer}/consents",
        form,
        origin="http://testserver",
        **{"sec-fetch-site": "same-origin"},
    )
    assert same.status_code == 303


def test_a_correction_from_the_panel(client, customer):
    form = {"field": "last_name", "value": "Meyer", "reason": "typo"}
    done = post(client, f"/customers/{customer}/rectify", form)
    assert done.status_code == 303, done.text
    page = client.get(done.headers["location"]).text
    assert "Meyer" in page and "Stammdaten berichtigt" in page
    bad = post(client, f"/customers/{customer}/rectify", {"field": "birth_date", "value": "x"})
    assert bad.status_code == 422 and "birth_date" in bad.text


def signed_in(client, db, role: str) -> str:
    from relata.auth.service import SESSION_COOKIE
    from tests.conftest import web_session

    token, csrf = web_session(db, role)
    client.headers.pop("Authorization", None)
    client.cookies.set(SESSION_COOKIE, token)
    return csrf


def test_the_panel_follows_the_users_permissions(client, db, customer):
    signed_in(client, db, "marketing")  # may see customers, not their consent
    page = client.get(f"/customers/{customer}").text
    assert 'id="consent"' not in page
    csrf = signed_in(client, db, "agent")
    page = client.get(f"/customers/{customer}").text
    assert 'id="consent"' in page and f'name="csrf_token" value="{csrf}"' in page
    form = {"purpose": "marketing", "channel": "email", "action": "grant"}
    assert post(client, f"/customers/{customer}/consents", form).status_code == 403  # no token
    done = post(client, f"/customers/{customer}/consents", {**form, "csrf_token": csrf})
    assert done.status_code == 303
    assert cell(client.get(f"/customers/{customer}").text, "marketing", "email") == "granted"
