"""Every route of the assembled app against every role, as the issue asks: a matrix.

A signed-in user of each role calls each route; the answer is 403 exactly when
``auth/permissions.ROUTES`` says the role lacks the permission. Anything else (200, 404,
422, a redirect) means the gate let the request through. Without credentials every
route but the public ones answers 401, or sends a browser to the login page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from starlette.routing import Mount

from relata.api.app import create_app
from relata.auth.gate import is_page
from relata.auth.permissions import ROLES, ROUTES, Principal, rule_for
from relata.auth.service import SESSION_COOKIE
from relata.config import Settings
from tests.conftest import web_session

_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


@dataclass(frozen=True)
class Call:
    method: str
    template: str
    path: str
    api_route: bool

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


def _example(template: str) -> str:
    """A concrete path: ids are 1 (nobody), other parameters a word (a bad token)."""
    path = _PARAM.sub(lambda m: "1" if m.group(1).endswith("id") else "x", template)
    return path + "/relata.css" if template == "/static" else path


def calls() -> list[Call]:
    app = create_app(Settings(database_url="sqlite://"))  # only its routes: never started
    found = []
    for route in iter_route_contexts(app.routes):
        mount = isinstance(route.original_route, Mount)
        template = route.path if mount else route.path_format or route.path
        methods = sorted((route.methods or {"GET"}) - {"HEAD"})
        api = isinstance(route.original_route, APIRoute)
        found += [Call(m, template, _example(template), api) for m in methods]
    return found


CALLS = calls()


@pytest.fixture
def app_client(db, settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, db), raise_server_exceptions=False) as client:
        yield client


def test_every_route_is_in_the_table():
    unmapped = [str(c) for c in CALLS if (c.method, c.template) not in ROUTES]
    assert not unmapped, (
        "routes missing from auth/permissions.ROUTES (until mapped, only admins may call "
        "them); add a line for each:\n"
        + "\n".join(f'    ("{c.split()[0]}", "{c.split()[1]}"): needs("…"),' for c in unmapped)
    )


def test_routes_the_gate_cannot_see_are_public():
    """Plain Starlette routes and mounts run no FastAPI dependencies, so no gate."""
    hidden = [
        str(c) for c in CALLS if not c.api_route and not rule_for(c.method, c.template).public
    ]
    assert not hidden, f"not behind the gate; make them APIRoutes or public: {hidden}"


@pytest.mark.parametrize("call", CALLS, ids=str)
def test_without_credentials_only_public_routes_answer(app_client, call):
    response = app_client.request(call.method, call.path, follow_redirects=False)
    if rule_for(call.method, call.template).public:
        # (POST /login without its form token is a 403 of the login page's own.)
        assert response.status_code != 401, response.text
        assert not response.headers.get("location", "").startswith("/login")
    elif is_page(call.template) and call.method == "GET":
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")
    else:
        assert response.status_code == 401, response.text
        assert response.json()["detail"].startswith("authentication required")


def test_every_role_against_every_route(db, app_client):
    """403 exactly where the table denies; the gate passes everything else."""
    wrong = []
    for call in CALLS:
        rule = rule_for(call.method, call.template)
        if rule.public:
            continue  # nothing to refuse; the test above calls them without credentials
        for role, granted in ROLES.items():
            # A fresh session each call: POST /logout ends the one it is called with.
            token, csrf = web_session(db, role)
            app_client.cookies.set(SESSION_COOKIE, token)
            response = app_client.request(
                call.method, call.path, headers={"X-CSRF-Token": csrf}, follow_redirects=False
            )
            allowed = Principal("user", 1, role, granted, role=role).allowed(rule)
            if (response.status_code == 403) == allowed or response.status_code == 401:
                wrong.append(f"{call} as {role}: {response.status_code} (allowed: {allowed})")
    assert not wrong, "\n".join(wrong)
