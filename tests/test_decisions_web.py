"""The decisions pages: offer list and editor, simulator, performance, the 360° view's panel."""

from __future__ import annotations

import re

import pytest

from relata.config import Settings
from relata.consent import service as consent
from relata.decisions import sync
from tests.helpers import decision_settings, make_source, put, rec

HTML = {"Accept": "text/html"}


@pytest.fixture
def settings(db) -> Settings:
    return decision_settings(db)


@pytest.fixture
def eva(db, settings) -> int:
    make_source(db, "shop")
    cid = put(
        db, settings, "shop", rec("K1", first_name="Eva", birth_date="1970-01-01")
    ).customer_of["K1"]
    with db.session() as s:
        consent.record(s, settings, cid, "personalisation", "web", "grant", via="ui")
    return cid


def form(**fields):
    base = {
        "name": "Shoes",
        "kind": "product",
        "status": "active",
        "value": "20",
        "weight": "1",
        "cost": "0",
        "channels": ["web"],
        "placements": "home, checkout",
        "suppress_held": "product",
        "impression_window_days": "30",
        "held_days": "90",
        "max_impressions": "3",
    }
    return {**base, **fields}


def test_create_and_edit_an_offer_in_the_editor(client, db, eva):
    page = client.get("/decisions/offers/new?lang=en", headers=HTML)
    assert page.status_code == 200 and "New offer" in page.text
    saved = client.post(
        "/decisions/offers/new",
        data=form(key="shoes", starts_at="2026-01-01T08:00"),
        follow_redirects=False,
    )
    assert saved.status_code == 303 and saved.headers["location"].endswith(
        "/decisions/offers/shoes?saved=1"
    )
    offer = client.get("/v1/offers/shoes").json()
    assert offer["placements"] == ["home", "checkout"] and offer["value"] == 20
    assert offer["starts_at"].startswith("2026-01-01T07:00")  # Berlin winter time, stored UTC
    edited = client.post(
        "/decisions/offers/shoes", data=form(value="35", rule="age > 30"), follow_redirects=True
    )
    assert edited.status_code == 200 and "version 2" in edited.text
    listing = client.get("/decisions/offers?lang=de", headers=HTML).text
    assert "shoes" in listing and "age &gt; 30" in listing and "Angebote" in listing


def test_a_refused_offer_comes_back_with_the_reason(client, db):
    bad = client.post("/decisions/offers/new", data=form(key="x", rule="agee > 3"))
    assert bad.status_code == 422
    assert "unknown field" in bad.text and "did you mean age" in bad.text
    assert 'value="x"' in bad.text  # the form keeps what was typed
    nochannel = client.post("/decisions/offers/new", data={**form(key="y"), "channels": []})
    assert nochannel.status_code == 422 and "channels" in nochannel.text
    assert client.get("/decisions/offers/nope", headers=HTML).status_code == 404


def test_the_simulator_shows_ranked_offers_and_why(client, db, eva):
    client.post(
        "/v1/offers", json={"key": "shoes", "name": "Shoes", "channels": ["web"], "value": 20}
    )
    client.post(
        "/v1/offers",
        json={
            "key": "young",
            "name": "Young",
            "channels": ["web"],
            "value": 90,
            "rule": "age < 30",
        },
    )
    page = client.get(f"/decisions/simulate?customer={eva}&channel=web&lang=en", headers=HTML)
    assert page.status_code == 200
    ranked = page.text.split('id="ranked"')[1]
    assert "shoes" in ranked
    assert re.search(r"young.*?rule.*?age &lt; 30", page.text, re.S)
    # Nothing was logged.
    assert client.get(f"/v1/customers/{eva}").json()["decisions"] == []
    for query, status in (
        ("customer=abc", 422),
        ("customer=999999", 422),
        (f"customer={eva}&channel=fax", 422),
        (f"customer={eva}&context=novalue", 422),
    ):
        assert client.get(f"/decisions/simulate?{query}", headers=HTML).status_code == status


def test_performance_page_and_the_360_view(client, db, eva):
    client.post(
        "/v1/offers", json={"key": "shoes", "name": "Shoes", "channels": ["web"], "value": 20}
    )
    made = client.post("/v1/decisions", json={"customer_id": eva, "channel": "web"}).json()
    client.post(
        f"/v1/decisions/{made['decision_id']}/responses", json={"offer": "shoes", "type": "accept"}
    )
    with db.session() as s:
        sync.fold(s, 30)
    page = client.get("/decisions/performance?lang=en", headers=HTML)
    assert page.status_code == 200 and "shoes" in page.text and "100.0 %" in page.text
    view = client.get(f"/customers/{eva}?lang=en", headers=HTML).text
    assert 'id="decisions"' in view and "accepted" in view and "Decision made" in view
    api = client.get(f"/v1/customers/{eva}").json()["decisions"]
    assert api[0]["offers"][0]["responses"] == ["impression", "accept"]
