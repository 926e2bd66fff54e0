"""The segment pages: list, editor, saving through the form, errors, both languages."""

from __future__ import annotations

import html
import json
import re

from tests.helpers import make_source, put, rec


def _builder(page: str) -> dict:
    found = re.search(r'<script type="application/json" id="rule-catalogue">(.*?)</script>', page)
    assert found
    return json.loads(found.group(1))


def _initial(page: str):  # type: ignore[no-untyped-def]
    found = re.search(r'<script type="application/json" id="rule-initial">(.*?)</script>', page)
    assert found
    return json.loads(found.group(1))


def test_create_edit_refresh_and_delete_through_the_pages(client, db, settings):
    make_source(db, "shop")
    put(db, settings, "shop", rec("1", first_name="Anna", gender="f", city="Köln"))
    empty = client.get("/segments?lang=de")
    assert empty.status_code == 200
    assert "Noch keine Segmente." in empty.text
    assert 'href="/segments">Segmente</a>' in empty.text  # in the navigation

    new = client.get("/segments/new")
    builder = _builder(new.text)
    assert builder["check_url"] == "/v1/rules/check?count=true"
    labels = {f["name"]: f["label"] for f in builder["fields"]}
    assert labels["first_name"] == "Vorname" and labels["age"] == "Alter"
    assert labels["consent.marketing.email"] == "Einwilligung marketing · E-Mail"
    assert _initial(new.text) is None

    form = {"name": "Kölnerinnen", "description": "Test", "rule": 'gender = "f" und city = "Köln"'}
    saved = client.post("/segments/new", data=form, follow_redirects=False)
    assert saved.status_code == 303
    assert saved.headers["location"] == "/segments/K%C3%B6lnerinnen?saved=1"
    page = client.get(saved.headers["location"])
    assert "Gespeichert als Version 1." in page.text
    assert 'gender = "f" and city = "Köln"' in html.unescape(page.text)
    assert _initial(page.text)["and"][0] == {"field": "gender", "op": "=", "value": "f"}

    edited = client.post(
        "/segments/Kölnerinnen",
        data={"description": "nur PLZ", "rule": 'postcode starts with "5"'},
        follow_redirects=False,
    )
    assert edited.headers["location"].endswith("?saved=2")
    refreshed = client.post("/segments/Kölnerinnen/refresh", follow_redirects=False)
    assert refreshed.headers["location"].endswith("?refreshed=0.0.0")
    shown = client.get(refreshed.headers["location"])
    assert "Aktualisiert: 0 Mitglieder, 0 eingetreten, 0 ausgetreten." in shown.text
    listed = client.get("/segments")
    assert "Kölnerinnen" in listed.text and "nur PLZ" in listed.text

    gone = client.post("/segments/Kölnerinnen/delete", follow_redirects=False)
    assert gone.headers["location"] == "/segments?deleted=K%C3%B6lnerinnen"
    assert "Segment „Kölnerinnen“ gelöscht." in client.get(gone.headers["location"]).text


def test_a_refused_rule_comes_back_in_the_form_with_its_position(client):
    refused = client.post("/segments/new", data={"name": "x", "rule": "age >"})
    assert refused.status_code == 422
    assert "Nicht gespeichert: line 1, column 6: expected a value" in html.unescape(refused.text)
    assert ">age &gt;</textarea>" in refused.text  # what was typed stays
    bad_name = client.post("/segments/new", data={"name": "a/b", "rule": "age > 1"})
    assert bad_name.status_code == 422
    assert "invalid segment name" in bad_name.text


def test_unknown_segments_are_a_404_page(client):
    for response in (
        client.get("/segments/nope"),
        client.post("/segments/nope", data={"rule": "age > 1"}),
        client.post("/segments/nope/refresh"),
        client.post("/segments/nope/delete"),
    ):
        assert response.status_code == 404
        assert "Segment nicht gefunden" in response.text


def test_a_rule_text_cannot_break_out_of_the_page(client):
    rule = 'city = "</script><script>alert(1)</script>"'
    client.post("/segments/new", data={"name": "x", "rule": rule})
    page = client.get("/segments/x").text
    assert "<script>alert(1)" not in page
    assert _initial(page) == {
        "field": "city",
        "op": "=",
        "value": "</script><script>alert(1)</script>",
    }


def test_the_pages_speak_english_too(client):
    page = client.get("/segments/new?lang=en").text
    assert "New segment" in page and "Rule as text" in page
    labels = {f["name"]: f["label"] for f in _builder(page)["fields"]}
    assert labels["birthday"] == "Birthday"
    assert _builder(page)["labels"]["rules.window.last"] == "in the last"
