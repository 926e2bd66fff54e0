"""Signing in, sessions, CSRF, API keys and the login rate limit, on both databases.

Each attack of the issue gets the right 4xx and no data: brute-forced logins (429),
missing or forged CSRF tokens (403), keys out of scope (403), wrong or expired sessions
(401, or the login page for a browser).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update

from relata.api.app import create_app
from relata.auth import passwords, service
from relata.auth.models import ApiKey, AuditEntry, LoginAttempt, User, WebSession
from relata.auth.service import SESSION_COOKIE
from relata.config import Settings
from relata.db import utcnow
from tests.conftest import api_key, web_session
from tests.helpers import make_source, put, rec

PASSWORD = "korrekt-Pferd-Batterie"


@pytest.fixture(autouse=True)
def quick_hashes(monkeypatch):
    """argon2id with test-sized costs: the production ones take ~0.3 s a hash here."""
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))
    passwords._dummy_hash.cache_clear()
    yield
    passwords._dummy_hash.cache_clear()


@pytest.fixture
def settings(db) -> Settings:
    # Production cookie settings (Secure): the clients below speak https.
    return Settings(database_url=db.url, login_max_failures=3, login_max_failures_per_ip=8)


def _client(db, settings) -> TestClient:
    return TestClient(create_app(settings, db), base_url="https://testserver")


@pytest.fixture
def web(db, settings) -> Iterator[TestClient]:
    with _client(db, settings) as client:
        yield client


def add_user(db, username: str = "anna", role: str = "agent") -> None:
    with db.session() as session:
        service.add_user(session, username, role, PASSWORD)


def login(client: TestClient, username: str, password: str, next_path: str = "/"):
    form = client.get("/login", params={"next": next_path})
    assert form.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token
    data = {"username": username, "password": password, "csrf_token": token.group(1)}
    return client.post("/login", data={**data, "next": next_path}, follow_redirects=False)


def cookie_header(response, name: str) -> str:
    found = [c for c in response.headers.get_list("set-cookie") if c.startswith(name + "=")]
    assert found, f"no {name} cookie set"
    return found[0]


# --- signing in ----------------------------------------------------------------------------


def test_a_browser_is_sent_to_the_login_page_and_back(db, web):
    add_user(db)
    first = web.get("/customers/7?lang=en", follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == "/login?next=%2Fcustomers%2F7%3Flang%3Den"

    signed_in = login(web, "Anna", PASSWORD, "/customers/7?lang=en")  # names fold case
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/customers/7?lang=en"
    cookie = cookie_header(signed_in, SESSION_COOKIE).lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" in cookie
    assert '<span class="user" id="user-menu">anna <span class="role">Service und Vertrieb' in (
        web.get("/").text
    )
    assert web.get("/v1/me").json() == {
        "kind": "user",
        "name": "anna",
        "role": "agent",
        "permissions": sorted(service.ROLES["agent"]),
    }


def test_only_hashes_of_secrets_are_stored(db, web):
    add_user(db)
    token = web.cookies.get(SESSION_COOKIE) if login(web, "anna", PASSWORD) else None
    assert token
    key = api_key(db, "events:ingest")
    with db.session(write=False) as session:
        user = session.scalar(select(User))
        assert user is not None and user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash
        stored = session.scalars(select(WebSession.token_hash)).all()
        assert stored == [passwords.digest(token)]
        row = session.scalar(select(ApiKey))
        assert row is not None and row.secret_hash == passwords.digest(key)
        dump = " ".join(str(v) for v in session.execute(select(ApiKey.__table__)).one())
    assert key not in dump and token not in str(stored)


def test_a_wrong_password_and_an_unknown_user_look_the_same(db, web, monkeypatch):
    add_user(db)
    verified: list[str] = []
    real = passwords._hasher

    class Spy:
        def hash(self, password: str) -> str:
            return real.hash(password)

        def verify(self, stored: str, password: str) -> bool:
            verified.append(stored)
            return real.verify(stored, password)

    monkeypatch.setattr(passwords, "_hasher", Spy())
    wrong = login(web, "anna", "not-the-password")
    unknown = login(web, "nobody", "not-the-password")
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert "Benutzername oder Passwort ist falsch." in response.text
        assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    # An argon2 verification either way: the unknown user against a dummy hash.
    assert len(verified) == 2 and all(h.startswith("$argon2id$") for h in verified)


def test_a_disabled_user_cannot_sign_in_and_is_signed_out(db, web):
    add_user(db)
    assert login(web, "anna", PASSWORD).status_code == 303
    with db.session() as session:
        service.disable_user(session, "anna")
    assert web.get("/v1/me").status_code == 401
    assert login(web, "anna", PASSWORD).status_code == 401


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example", "/\\evil", "x"])
def test_after_login_only_paths_of_this_site(db, web, target):
    add_user(db)
    assert login(web, "anna", PASSWORD, target).headers["location"] == "/"


# --- the login form's own CSRF protection --------------------------------------------------


def test_the_login_form_needs_its_double_submit_token(db, web):
    add_user(db)
    form = {"username": "anna", "password": PASSWORD, "next": "/"}
    # No token at all (a cross-site form has no access to our cookie or page).
    missing = web.post("/login", data=form, follow_redirects=False)
    assert missing.status_code == 403 and "abgelaufen" in missing.text
    # A token of the attacker's own making, without the matching cookie.
    web.get("/login")
    forged = web.post("/login", data={**form, "csrf_token": "forged"}, follow_redirects=False)
    assert forged.status_code == 403
    assert SESSION_COOKIE not in web.cookies
    login_cookie = cookie_header(web.get("/login"), "relata_login").lower()
    assert "samesite=strict" in login_cookie and "path=/login" in login_cookie


# --- brute force ---------------------------------------------------------------------------


def test_brute_force_is_stopped_across_server_processes(db, settings):
    add_user(db)
    # Two apps on one database stand for two server processes.
    with _client(db, settings) as one, _client(db, settings) as two:
        for client in (one, two, one):
            assert login(client, "anna", f"guess-{id(client)}").status_code == 401
        blocked = login(two, "anna", PASSWORD)  # even the right password now
    assert blocked.status_code == 429
    assert 0 < int(blocked.headers["Retry-After"]) <= settings.login_window_seconds
    assert "Zu viele fehlgeschlagene Anmeldungen" in blocked.text
    assert SESSION_COOKIE not in blocked.headers.get("set-cookie", "")


def test_the_block_lifts_when_the_failures_age_out(db, web, settings):
    add_user(db)
    for _ in range(settings.login_max_failures):
        login(web, "anna", "wrong-password")
    assert login(web, "anna", PASSWORD).status_code == 429
    with db.session() as session:
        old = utcnow() - timedelta(seconds=settings.login_window_seconds + 1)
        session.execute(update(LoginAttempt).values(at=old))
    assert login(web, "anna", PASSWORD).status_code == 303
    # A successful login forgets the name's failures.
    with db.session(write=False) as session:
        left = session.scalar(select(LoginAttempt.id).where(LoginAttempt.username == "anna"))
    assert left is None


def test_one_address_guessing_many_names_is_stopped(db, web, settings):
    for n in range(settings.login_max_failures_per_ip):
        assert login(web, f"user{n}", "guess-guess").status_code == 401
    assert login(web, "someone-else", "guess-guess").status_code == 429


# --- sessions and CSRF ---------------------------------------------------------------------


def test_an_expired_or_unknown_session_gets_no_data(db, web):
    token, _ = web_session(db, "admin")
    with db.session() as session:
        session.execute(update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    for cookie in (token, "made-up-token"):
        web.cookies.set(SESSION_COOKIE, cookie)
        api = web.get("/v1/customers", params={"q": "a"})
        assert api.status_code == 401
        assert api.json() == {"detail": "your session has expired or is invalid; sign in again"}
        web.cookies.set(SESSION_COOKIE, cookie)
        page = web.get("/?q=a", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/login?next=%2F%3Fq%3Da"
        assert 'relata_session=""' in page.headers["set-cookie"]  # the stale cookie goes


def test_signing_out_ends_the_session_for_good(db, web):
    add_user(db)
    login(web, "anna", PASSWORD)
    token = web.cookies.get(SESSION_COOKIE)
    page = web.get("/?q=x").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf and f'<meta name="csrf-token" content="{csrf.group(1)}">' in page
    out = web.post("/logout", data={"csrf_token": csrf.group(1)}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    web.cookies.set(SESSION_COOKIE, token)  # replaying the old cookie
    assert web.get("/v1/me").status_code == 401


def test_unsafe_requests_with_a_cookie_need_the_csrf_token(db, web):
    token, csrf = web_session(db, "admin")
    web.cookies.set(SESSION_COOKIE, token)
    source = {"name": "shop", "channel": "shop"}
    for headers in ({}, {"X-CSRF-Token": "forged"}, {"X-CSRF-Token": passwords.csrf_token_of("x")}):
        refused = web.post("/v1/sources", json=source, headers=headers)
        assert refused.status_code == 403
        assert refused.json()["detail"] == "missing or wrong CSRF token; reload the page"
    assert web.get("/v1/sources").json() == []  # nothing was created
    with db.session(write=False) as session:  # each refused attempt is in the audit log
        refusals = session.scalars(select(AuditEntry.status)).all()
    assert refusals == [403, 403, 403]
    # What relata.js sends with fetch: the token from the page's meta tag, in a header.
    assert web.post("/v1/sources", json=source, headers={"X-CSRF-Token": csrf}).status_code == 201
    # A form without the field, e.g. a forged sign-out.
    forged = web.post("/logout", data={"csrf_token": "nope"}, follow_redirects=False)
    assert forged.status_code == 403 and "Sicherheitsmerkmal" in forged.text


def test_an_api_key_needs_no_csrf_token_and_ignores_cookies(db, web):
    key = api_key(db, "sources:manage")
    created = web.post(
        "/v1/sources",
        json={"name": "pos", "channel": "pos"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert created.status_code == 201
    # A bad key is not rescued by a good cookie.
    token, _ = web_session(db, "admin")
    web.cookies.set(SESSION_COOKIE, token)
    assert web.get("/v1/me", headers={"Authorization": "Bearer rk_wrong"}).status_code == 401


# --- API keys ------------------------------------------------------------------------------


def test_an_ingest_key_can_post_events_and_nothing_else(db, web):
    key = api_key(db, "events:ingest")
    auth = {"Authorization": f"Bearer {key}"}
    event = {"type": "identify", "userId": "K1", "traits": {"email": "a@example.de"}}
    assert web.post("/v1/events", json=event, headers=auth).status_code == 202
    for method, path in (("GET", "/v1/customers/1"), ("GET", "/v1/customers?q=a"), ("GET", "/")):
        refused = web.request(method, path, headers=auth)
        assert refused.status_code == 403, path
        assert "a@example.de" not in refused.text
    assert web.get("/v1/customers/1", headers=auth).json() == {
        "detail": "forbidden: GET /v1/customers/{customer_id} needs the permission customers:read"
    }


@pytest.mark.parametrize("how", ["revoked", "expired", "garbage", "basic", "empty"])
def test_a_bad_key_is_a_401(db, web, how):
    key = api_key(db, "admin")
    with db.session() as session:
        if how == "revoked":
            service.revoke_api_key(session, session.scalar(select(ApiKey.name)), utcnow())
        if how == "expired":
            session.execute(update(ApiKey).values(expires_at=utcnow() - timedelta(seconds=1)))
    header = {
        "garbage": "Bearer rk_" + "x" * 43,
        "basic": "Basic YWRtaW46YWRtaW4=",
        "empty": "Bearer ",
    }.get(how, f"Bearer {key}")
    response = web.get("/v1/customers", params={"q": "a"}, headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["detail"] == "invalid, revoked or expired API key"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_keys_and_users_over_the_api(db, web):
    admin = {"Authorization": f"Bearer {api_key(db, 'admin')}"}
    created = web.post(
        "/v1/api-keys", json={"name": "shop-events", "scopes": ["events:ingest"]}, headers=admin
    )
    assert created.status_code == 201
    body = created.json()
    assert body["key"].startswith("rk_") and body["scopes"] == ["events:ingest"]
    listed = web.get("/v1/api-keys", headers=admin).json()
    assert "key" not in listed[0] and body["key"] not in str(listed)
    again = web.post("/v1/api-keys", json={"name": "shop-events", "scopes": ["x"]}, headers=admin)
    assert again.status_code == 422 and "unknown scope 'x'" in again.json()["detail"]
    assert web.delete("/v1/api-keys/shop-events", headers=admin).json()["revoked_at"]
    assert web.delete("/v1/api-keys/nope", headers=admin).status_code == 404

    user = {"username": "Bernd", "role": "dpo", "password": PASSWORD}
    assert web.post("/v1/users", json=user, headers=admin).json()["username"] == "bernd"
    assert web.post("/v1/users", json=user, headers=admin).status_code == 409
    weak = web.post("/v1/users", json={**user, "username": "c", "password": "short"}, headers=admin)
    assert weak.status_code == 422 and "at least 10 characters" in weak.json()["detail"]
    bad_role = web.post("/v1/users", json={**user, "username": "d", "role": "root"}, headers=admin)
    assert bad_role.status_code == 422 and "unknown role 'root'" in bad_role.json()["detail"]
    dpo = {"Authorization": f"Bearer {api_key(db, 'dpo')}"}
    assert web.get("/v1/users", headers=dpo).status_code == 403


# --- contact data only where needed --------------------------------------------------------


def test_marketing_sees_the_customer_but_not_how_to_reach_them(db, web, settings):
    make_source(db, "shop")
    cid = put(
        db,
        settings,
        "shop",
        rec(
            "K1",
            first_name="Anna",
            last_name="Müller",
            email="anna.mueller@example.de",
            phone="+4922112345",
            street="Hauptstraße",
            house_number="5a",
            city="Köln",
        ),
    ).customer_of["K1"]
    marketing = {"Authorization": f"Bearer {api_key(db, 'marketing')}"}
    agent = {"Authorization": f"Bearer {api_key(db, 'agent')}"}

    masked = web.get(f"/v1/customers/{cid}", headers=marketing).json()
    golden = masked["customer"]
    assert (golden["first_name"], golden["city"]) == ("Anna", "Köln")
    assert golden["email"] == "a***@example.de" and golden["phone"] == "+49***45"
    assert golden["street"] == "H***" and golden["house_number"] == "***"
    assert "anna.mueller" not in str(masked) and "12345" not in str(masked)
    assert "Hauptstraße" not in str(masked)
    found = web.get("/v1/customers", params={"q": "anna.mueller@example.de"}, headers=marketing)
    assert found.json()[0]["email"] == "a***@example.de"
    page = web.get(f"/customers/{cid}", headers=marketing).text
    assert "Anna" in page and "anna.mueller@example.de" not in page and "a***@example.de" in page

    full = web.get(f"/v1/customers/{cid}", headers=agent).json()["customer"]
    assert full["email"] == "anna.mueller@example.de" and full["street"] == "Hauptstraße"


def test_the_header_shows_who_is_signed_in_and_only_their_links(db, web):
    for role, search, audit_link in (("agent", True, False), ("dpo", True, True)):
        token, _ = web_session(db, role, username=f"{role}-user")
        web.cookies.set(SESSION_COOKIE, token)
        page = web.get("/").text
        assert f"{role}-user" in page and "Abmelden" in page
        assert ('href="/audit"' in page) is audit_link
        assert ('<a href="/">Kundensuche</a>' in page) is search
    token, _ = web_session(db, "analyst")
    web.cookies.set(SESSION_COOKIE, token)
    refused = web.get("/")
    assert refused.status_code == 403 and "Ihre Rolle (Analyse) erlaubt diese Seite nicht." in (
        refused.text
    )


def test_no_table_of_ours_keeps_a_password_in_clear(db, web):
    add_user(db, "carla", "marketing")
    login(web, "carla", PASSWORD)
    login(web, "carla", "wrong-" + PASSWORD)
    with db.engine.connect() as conn:
        for table in ("users", "web_sessions", "api_keys", "login_attempts", "audit_log"):
            rows = conn.execute(text(f"SELECT * FROM {table}")).all()
            assert PASSWORD not in str(rows), table


def test_a_too_long_password_never_matches_by_its_prefix():
    stored = passwords.hash_password("x" * passwords.MAX_LENGTH)
    assert passwords.verify_password(stored, "x" * passwords.MAX_LENGTH)
    assert not passwords.verify_password(stored, "x" * (passwords.MAX_LENGTH + 1))
    assert not passwords.verify_password(None, "anything")


def test_signing_in_again_replaces_the_old_session(db, web):
    add_user(db)
    login(web, "anna", PASSWORD)
    first = web.cookies.get(SESSION_COOKIE)
    login(web, "anna", PASSWORD)
    assert web.cookies.get(SESSION_COOKIE) != first
    with db.session(write=False) as session:
        assert session.scalars(select(WebSession.token_hash)).all() == [
            passwords.digest(web.cookies.get(SESSION_COOKIE))
        ]


def test_the_api_docs_are_public_and_name_the_key_scheme(web):
    schema = web.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    assert web.get("/docs").status_code == 200 and web.get("/health").status_code == 200
