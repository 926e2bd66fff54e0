"""`relata users` and `relata apikeys`: secrets shown once, never on the command line."""

from __future__ import annotations

import json

import pytest
from argon2 import PasswordHasher
from typer.testing import CliRunner

from relata.auth import passwords
from relata.cli import app
from relata.config import get_settings
from relata.db import Database, utcnow

PASSWORD = "ein-langes-Passwort"


@pytest.fixture
def relata(db, monkeypatch):
    monkeypatch.setenv("RELATA_DATABASE_URL", db.url)
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str, ok: bool = True, input: str | None = None):
        result = runner.invoke(app, list(args), input=input)
        if ok:
            assert result.exit_code == 0, (args, result.output, result.stderr)
        return result

    yield run
    get_settings.cache_clear()


def principal(db: Database, key: str):
    from relata.auth import service

    with db.session(write=False) as session:
        return service.principal_for_api_key(session, key, utcnow())


def test_users_add_list_disable(relata):
    added = relata(
        "users", "add", "Anna", "--role", "dpo", "--password-stdin", "--json", input=PASSWORD + "\n"
    )
    assert json.loads(added.stdout)["username"] == "anna"
    assert PASSWORD not in added.output
    relata("users", "add", "ben", "--role", "marketing", "--password-stdin", input=PASSWORD)
    listed = json.loads(relata("users", "list", "--json").stdout)
    assert [(u["username"], u["role"], u["active"]) for u in listed] == [
        ("anna", "dpo", True),
        ("ben", "marketing", True),
    ]
    relata("users", "disable", "ben")
    assert [u["active"] for u in json.loads(relata("users", "list", "--json").stdout)] == [
        True,
        False,
    ]
    relata("users", "password", "ben", "--password-stdin", input="noch-ein-Passwort\n")
    assert all(u["active"] for u in json.loads(relata("users", "list", "--json").stdout))


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["users", "add", "anna", "--role", "root"], PASSWORD, "unknown role 'root'"),
        (["users", "add", "anna", "--role", "agent"], "kurz", "at least 10 characters"),
        (["users", "add", "a b", "--role", "agent"], PASSWORD, "a user name is 1–64"),
        (["users", "add", "anna", "--role", "agent"], "", "at least 10 characters"),
        (["users", "disable", "nobody"], None, "no user 'nobody'"),
        (["apikeys", "create", "k"], None, "at least one scope"),
        (["apikeys", "create", "k", "--scope", "root"], None, "unknown scope 'root'"),
        (["apikeys", "create", "k", "--role", "agent", "--expires-days", "0"], None, "at least 1"),
        (["apikeys", "revoke", "nope"], None, "no API key 'nope'"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(relata, args, stdin, message):
    flags = ["--password-stdin"] if stdin is not None else []
    result = relata(*args, *flags, ok=False, input=stdin)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_duplicate_user_is_refused(relata):
    relata("users", "add", "anna", "--role", "agent", "--password-stdin", input=PASSWORD)
    again = relata(
        "users", "add", "ANNA", "--role", "dpo", "--password-stdin", input=PASSWORD, ok=False
    )
    assert again.exit_code == 1 and "user 'anna' exists already" in again.stderr


def test_without_a_terminal_the_password_must_come_on_stdin(relata):
    result = relata("users", "add", "anna", "--role", "agent", ok=False)
    assert result.exit_code == 1 and "--password-stdin" in result.stderr


def test_apikeys_create_list_revoke(relata, db):
    created = json.loads(
        relata("apikeys", "create", "shop-events", "--scope", "events:ingest", "--json").stdout
    )
    key = created["key"]
    assert key.startswith("rk_") and created["scopes"] == ["events:ingest"]
    assert principal(db, key).permissions == {"events:ingest"}
    plain = relata("apikeys", "create", "crm", "--role", "agent", "--expires-days", "30")
    assert "shown this once" in plain.stderr
    crm_key = plain.stdout.strip().splitlines()[-1]
    assert principal(db, crm_key).role == "agent"

    listed = relata("apikeys", "list", "--json").stdout
    assert key not in listed and crm_key not in listed
    rows = json.loads(listed)
    assert [r["name"] for r in rows] == ["crm", "shop-events"]
    assert rows[1]["prefix"] == key[:10] and rows[0]["expires_at"]

    relata("apikeys", "revoke", "shop-events")
    assert principal(db, key) is None
    assert principal(db, crm_key) is not None


def test_relata_demo_creates_a_user_per_role_and_prints_the_logins(relata, db, tmp_path):
    import os

    from relata.auth import service
    from relata.auth.permissions import ROLES

    had_environment = "RELATA_ENVIRONMENT" in os.environ
    try:
        result = relata("demo", "--people", "60", "--dir", str(tmp_path), "--no-serve")
        if not had_environment:  # served over plain http: cookies without Secure
            assert os.environ["RELATA_ENVIRONMENT"] == "development"
    finally:
        if not had_environment:
            os.environ.pop("RELATA_ENVIRONMENT", None)
            get_settings.cache_clear()
    assert "demo logins" in result.stdout
    for role in ROLES:
        assert f"{role}-demo-password" in result.stdout
    with db.session() as session:
        users = {u.username: u.role for u in service.list_users(session)}
        assert users == {role: role for role in ROLES}
        ticket = service.begin_login(session, "dpo", "127.0.0.1", get_settings(), utcnow())
    assert isinstance(ticket, service.LoginTicket)
    assert passwords.verify_password(ticket.password_hash, "dpo-demo-password")
