"""The audit log: who read or changed whose data, when, through which route; append-only."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, OperationalError
from typer.testing import CliRunner

from relata.api.app import create_app
from relata.auth import audit
from relata.auth.models import AuditEntry
from relata.auth.service import SESSION_COOKIE
from relata.cli import app as cli
from relata.config import get_settings
from tests.conftest import api_key, web_session
from tests.helpers import make_source, put, rec


@pytest.fixture
def app_client(db, settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, db), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def anna(db, settings) -> int:
    make_source(db, "shop")
    return put(
        db, settings, "shop", rec("K1", first_name="Anna", email="anna@example.de")
    ).customer_of["K1"]


def bearer(db, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key(db, role)}"}


def entries(db, customer_id: int | None = None) -> list[audit.AuditRecord]:
    with db.session(write=False) as session:
        return audit.entries(session, customer_id)


def test_reading_the_360_view_is_audited(db, app_client, anna):
    token, _ = web_session(db, "agent", username="bea")
    app_client.cookies.set(SESSION_COOKIE, token)
    assert app_client.get(f"/customers/{anna}").status_code == 200
    app_client.cookies.clear()
    assert app_client.get(f"/v1/customers/{anna}", headers=bearer(db, "dpo")).status_code == 200

    api, page = entries(db, anna)  # newest first
    assert (page.actor_kind, page.actor_name, page.action) == ("user", "bea", "read")
    assert (page.method, page.route, page.status) == ("GET", "/customers/{customer_id}", 200)
    assert (api.actor_kind, api.route, api.customer_id) == (
        "api_key",
        "/v1/customers/{customer_id}",
        anna,
    )
    assert api.actor_name.startswith("test-") and api.at >= page.at


def test_refused_and_failed_requests_are_audited_too(db, app_client, anna):
    analyst = bearer(db, "analyst")
    assert app_client.get(f"/v1/customers/{anna}", headers=analyst).status_code == 403
    assert app_client.get("/v1/customers/424242", headers=bearer(db, "agent")).status_code == 404
    assert [e.status for e in entries(db, anna)] == [403]
    assert [e.status for e in entries(db, 424242)] == [404]


def test_every_change_is_audited(db, app_client):
    ingest = bearer(db, "events:ingest")
    event = {"type": "identify", "userId": "K9", "traits": {"firstName": "Ben"}}
    assert app_client.post("/v1/events", json=event, headers=ingest).status_code == 202
    assert app_client.post("/v1/events", json={"type": "?"}, headers=ingest).status_code == 422
    changes = [(e.action, e.method, e.route, e.status) for e in entries(db)]
    assert changes == [
        ("change", "POST", "/v1/events", 422),
        ("change", "POST", "/v1/events", 202),
    ]


def test_reads_of_nobody_in_particular_are_not_audited(db, app_client):
    assert app_client.get("/v1/sources", headers=bearer(db, "admin")).status_code == 200
    assert app_client.get("/v1/me", headers=bearer(db, "analyst")).status_code == 200
    assert app_client.get("/health").status_code == 200
    assert entries(db) == []


def test_no_data_leaves_unaudited(db, app_client, anna, monkeypatch):
    def broken(session, entry):
        raise OperationalError("INSERT INTO audit_log", {}, Exception("disk full"))

    monkeypatch.setattr(audit, "record", broken)
    response = app_client.get(f"/v1/customers/{anna}", headers=bearer(db, "agent"))
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert "Anna" not in response.text and "anna@example.de" not in response.text


def test_a_crash_is_audited_as_a_500(db, app_client, anna, monkeypatch):
    from relata.profiles import view

    def crash(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(view, "view", crash)
    assert app_client.get(f"/v1/customers/{anna}", headers=bearer(db, "agent")).status_code == 500
    assert [e.status for e in entries(db, anna)] == [500]


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_log SET status = 200", "DELETE FROM audit_log"]
)
def test_the_log_is_append_only_in_the_database(db, app_client, anna, statement):
    app_client.get(f"/v1/customers/{anna}", headers=bearer(db, "agent"))
    with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
        conn.execute(text(statement))
    with db.session(write=False) as session:
        assert session.scalars(select(AuditEntry.status)).all() == [200]


def test_the_dpo_reads_the_log_over_the_api_and_that_is_audited(db, app_client, anna):
    app_client.get(f"/v1/customers/{anna}", headers=bearer(db, "agent"))
    dpo = bearer(db, "dpo")
    rows = app_client.get("/v1/audit", params={"customer_id": anna}, headers=dpo).json()
    assert [(r["route"], r["status"]) for r in rows] == [("/v1/customers/{customer_id}", 200)]
    assert "actor_id" not in rows[0]
    assert app_client.get("/v1/audit", headers=bearer(db, "marketing")).status_code == 403
    assert app_client.get("/v1/audit?customer_id=0", headers=dpo).status_code == 422
    assert entries(db, anna)[0].route == "/v1/audit"


def test_the_audit_page(db, app_client, anna):
    app_client.get(f"/v1/customers/{anna}", headers=bearer(db, "agent"))
    token, _ = web_session(db, "dpo")
    app_client.cookies.set(SESSION_COOKIE, token)
    page = app_client.get("/audit", params={"customer_id": str(anna)})
    assert page.status_code == 200
    assert f"Zugriffsprotokoll für Kunde {anna}" in page.text
    assert "GET /v1/customers/{customer_id}" in page.text and "gelesen" in page.text
    bad = app_client.get("/audit", params={"customer_id": "abc"})
    assert bad.status_code == 422 and "„abc“ ist keine gültige Kunden-ID." in bad.text
    view = app_client.get(f"/customers/{anna}").text
    assert f'href="/audit?customer_id={anna}"' in view  # the DPO's way from the view
    token, _ = web_session(db, "agent")
    app_client.cookies.set(SESSION_COOKIE, token)
    assert app_client.get("/audit").status_code == 403


def test_relata_audit_on_the_command_line(db, app_client, anna, monkeypatch):
    app_client.get(f"/v1/customers/{anna}", headers=bearer(db, "agent"))
    monkeypatch.setenv("RELATA_DATABASE_URL", db.url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        result = runner.invoke(cli, ["audit", "--customer", str(anna), "--json"])
        assert result.exit_code == 0, result.output
        [row] = json.loads(result.stdout)
        assert (row["customer_id"], row["action"], row["status"]) == (anna, "read", 200)
        table = runner.invoke(cli, ["audit", "--customer", str(anna)])
        assert table.exit_code == 0 and "read" in table.stdout and "200" in table.stdout
        bad = runner.invoke(cli, ["audit", "--customer", "0"])
        assert bad.exit_code == 1 and bad.stderr == "error: invalid customer id 0\n"
    finally:
        get_settings.cache_clear()


def test_a_decision_is_audited_once_in_its_own_transaction(db, app_client, anna):
    headers = bearer(db, "admin")
    answer = app_client.post(
        "/v1/decisions", json={"customer_id": anna, "channel": "web"}, headers=headers
    )
    assert answer.status_code == 200
    missing = app_client.post(
        "/v1/decisions", json={"customer_id": 987654, "channel": "web"}, headers=headers
    )
    assert missing.status_code == 404
    rows = [e for e in entries(db) if e.route == "/v1/decisions"]  # newest first
    assert [(e.method, e.action, e.status) for e in rows] == [
        ("POST", "change", 404),
        ("POST", "change", 200),
    ]
    logged = app_client.get(f"/v1/decisions/{answer.json()['decision_id']}", headers=headers)
    assert logged.status_code == 200
