"""The segments API on both databases: statuses, messages, paging, and injection attempts."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from relata.profiles.models import Customer
from tests.helpers import make_source, put, rec


@pytest.fixture
def customers(db, settings) -> list[int]:
    make_source(db, "shop")
    done = put(
        db,
        settings,
        "shop",
        *(rec(f"K{i}", first_name=f"P{i}", gender="f" if i % 2 else "m", city="Köln")
          for i in range(1, 8)),
    )  # fmt: skip
    return sorted(done.customer_of.values())


def test_define_version_count_page_refresh_and_delete(client, customers):
    made = client.post(
        "/v1/segments",
        json={"name": "Frauen in Köln", "rule": 'gender = "f" und city = "Köln"'},
    )
    assert made.status_code == 201, made.text
    assert made.json()["rule"] == 'gender = "f" and city = "Köln"'
    assert made.json()["version"] == 1

    edited = client.put(
        "/v1/segments/Frauen in Köln",
        json={"rule_json": {"field": "gender", "op": "=", "value": "f"}, "description": "alle"},
    )
    assert (edited.status_code, edited.json()["version"]) == (200, 2)
    versions = client.get("/v1/segments/Frauen in Köln/versions").json()
    assert [(v["version"], v["rule"]) for v in versions] == [
        (2, 'gender = "f"'),
        (1, 'gender = "f" and city = "Köln"'),
    ]
    assert client.get("/v1/segments/Frauen in Köln/count").json() == {"count": 4}

    first = client.get("/v1/segments/Frauen in Köln/members", params={"limit": 3}).json()
    women = [c for i, c in enumerate(customers) if i % 2 == 0]
    assert first["members"] == women[:3]
    rest = client.get(
        "/v1/segments/Frauen in Köln/members", params={"limit": 3, "after": first["next_after"]}
    ).json()
    assert rest == {"members": women[3:], "next_after": None}

    refreshed = client.post("/v1/segments/Frauen in Köln/refresh")
    assert refreshed.json() == {"segment": "Frauen in Köln", "members": 4, "entered": 4, "left": 0}
    assert client.get("/v1/segments").json()[0]["members"] == 4

    assert client.delete("/v1/segments/Frauen in Köln").status_code == 204
    assert client.get("/v1/segments/Frauen in Köln").status_code == 404


def test_a_rule_can_be_checked_and_counted_before_it_is_saved(client, customers):
    checked = client.post("/v1/rules/check?count=true", json={"rule": "city = 'Köln'"})
    assert checked.json() == {
        "rule": 'city = "Köln"',
        "rule_json": {"field": "city", "op": "=", "value": "Köln"},
        "count": 7,
    }
    fields = client.get("/v1/rules/fields").json()
    names = {f["name"] for f in fields["fields"]}
    assert {"age", "birthday", "city", "purchases_total", "consent.marketing.email"} <= names
    gender = next(f for f in fields["fields"] if f["name"] == "gender")
    assert gender["choices"] == ["m", "f", "d"] and "contains" not in gender["ops"]


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "detail"),
    [
        ("post", "/v1/segments", {"name": "x", "rule": "age >"}, 422,
         "line 1, column 6: expected a value"),
        ("post", "/v1/segments", {"name": "x", "rule": "agee > 1"}, 422,
         "line 1, column 1: unknown field 'agee'; did you mean age?"),
        ("post", "/v1/segments", {"name": "x", "rule_json": {"field": "age", "op": "~"}}, 422,
         "op: unknown operator '~'"),
        ("post", "/v1/segments", {"name": "x"}, 422, "either as text"),
        ("post", "/v1/segments", {"name": "x", "rule": "a", "rule_json": {}}, 422,
         "either as text"),
        ("post", "/v1/segments", {"name": "x/../y", "rule": "age > 1"}, 422,
         "invalid segment name"),
        ("post", "/v1/segments", {"name": "x", "rule": 'in segment "ghost"'}, 422,
         "there is no segment 'ghost'"),
        ("put", "/v1/segments/nope", {"rule": "age > 1"}, 404, "no segment 'nope'"),
        ("put", "/v1/segments/nope", {}, 422, "nothing to change"),
        ("get", "/v1/segments/nope/count", None, 404, "no segment 'nope'"),
        ("get", "/v1/segments/nope/members", None, 404, "no segment 'nope'"),
        ("post", "/v1/segments/nope/refresh", None, 404, "no segment 'nope'"),
        ("delete", "/v1/segments/nope", None, 404, "no segment 'nope'"),
        ("post", "/v1/rules/check", {"rule": "x" * 20_001}, 422, "at most 20000"),
    ],
)  # fmt: skip
def test_bad_input_is_a_4xx_that_says_what_is_wrong(client, method, url, body, status, detail):
    kwargs = {"json": body} if body is not None else {}
    response = getattr(client, method)(url, **kwargs)
    assert response.status_code == status, response.text
    assert detail in response.json()["detail"]


def test_a_syntax_error_names_its_position(client):
    response = client.post("/v1/rules/check", json={"rule": 'gender = "f"\nand age >'})
    assert response.status_code == 422
    assert response.json() | {"detail": None} == {
        "detail": None,
        "message": 'expected a value: "text", a number, a date (2025-06-01 or 01.06.2025), '
        "true or false, found the end of the rule",
        "position": 22,
        "line": 2,
        "column": 10,
    }


def test_taken_names_and_used_segments_are_conflicts(client):
    assert client.post("/v1/segments", json={"name": "a", "rule": "age > 1"}).status_code == 201
    assert client.post("/v1/segments", json={"name": "a", "rule": "age > 1"}).status_code == 409
    client.post("/v1/segments", json={"name": "b", "rule": 'in segment "a"'})
    circle = client.put("/v1/segments/a", json={"rule": 'in segment "b"'})
    assert circle.status_code == 422
    assert circle.json()["detail"] == "segments refer to each other in a circle: a → b → a"
    assert client.delete("/v1/segments/a").status_code == 409


@pytest.mark.parametrize(
    "rule",
    [
        'city = "x\'; DROP TABLE customers; --"',
        'city = "x\\" OR 1=1 --"',
        "has event \"x'); DELETE FROM events; --\" where properties.campaign = \"' OR '1'='1\"",
        "city in (\"a\", \"b') OR ('1'='1\")",
        'city contains "%" or city starts with "_" or city ends with "\\\\"',
        'has event where properties."a b-c" = "x"',
    ],
)
def test_injection_attempts_in_values_are_only_values(client, db, customers, rule):
    checked = client.post("/v1/rules/check?count=true", json={"rule": rule})
    assert checked.status_code == 200, checked.text
    assert checked.json()["count"] == 0
    with db.session(write=False) as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 7


@pytest.mark.parametrize(
    "rule",
    [
        "city = 'x' ; DROP TABLE customers",
        "customers.id > 0",
        'has event where properties."x\') OR 1=1 --" = "x"',
        'has event where properties."a\\"b" = 1',
        "1 = 1",
        "city = city",
        'sum("amount) FROM holdings; --" of purchases) > 1',
    ],
)
def test_injection_attempts_in_structure_are_refused_cleanly(client, db, customers, rule):
    checked = client.post("/v1/rules/check?count=true", json={"rule": rule})
    assert checked.status_code == 422, checked.text
    assert checked.json()["detail"].startswith("line 1, column ")
    json_form = {"field": "properties.x') OR 1=1 --", "op": "is set"}
    refused = client.post("/v1/rules/check", json={"rule_json": {"has": {
        "collection": "events", "where": json_form}}})  # fmt: skip
    assert refused.status_code == 422
    assert refused.json()["path"] == "has.where.field"
