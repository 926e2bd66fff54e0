"""The permission model itself, without a database: roles, the route table, key scopes."""

from __future__ import annotations

from pathlib import Path

import pytest

from relata.auth import permissions as p
from relata.auth.permissions import ALL, PUBLIC, ROLES, ROUTES, SIGNED_IN, UNMAPPED, Principal

README = Path(__file__).resolve().parent.parent / "README.md"


def principal(role: str) -> Principal:
    return Principal("user", 1, role, ROLES[role], role=role)


def test_every_role_grants_known_permissions_and_admin_grants_all():
    assert ROLES["admin"] == ALL
    for role, granted in ROLES.items():
        assert granted <= ALL, role


def test_the_roles_the_issue_asks_for():
    marketing, agent, analyst, dpo = (ROLES[r] for r in ("marketing", "agent", "analyst", "dpo"))
    assert {"segments:write", "campaigns:write", "offers:write"} <= marketing
    assert "customers:read_contact" not in marketing  # contact data masked
    assert {"customers:read", "customers:read_contact", "customers:write"} <= agent
    assert "interactions:write" in agent
    assert analyst == {"reports:read"}  # no single customer at all
    assert {"consent:read", "consent:write", "gdpr:export", "gdpr:erase", "audit:read"} <= dpo
    # Only the admin manages users and sees the audit log besides the DPO.
    assert [r for r, g in ROLES.items() if "users:manage" in g] == ["admin"]
    assert sorted(r for r, g in ROLES.items() if "audit:read" in g) == ["admin", "dpo"]


def test_the_table_names_only_known_permissions():
    for rule in ROUTES.values():
        assert rule.public or rule.any_of <= ALL


def test_public_routes_are_exactly_these():
    public = sorted(path for (_, path), rule in ROUTES.items() if rule.public)
    assert set(public) == {
        "/health",
        "/login",
        "/static",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/openapi.json",
        "/c/confirm/{token}",
        "/c/unsubscribe/{token}",
    }


def test_an_unmapped_route_is_for_admins_only():
    rule = p.rule_for("POST", "/v1/something-new")
    assert rule is UNMAPPED
    assert principal("admin").allowed(rule)
    for role in ("marketing", "agent", "analyst", "dpo"):
        assert not principal(role).allowed(rule), role


def test_head_is_looked_up_as_get():
    assert p.rule_for("HEAD", "/v1/customers") is ROUTES[("GET", "/v1/customers")]


def test_a_rule_allows_any_one_of_its_permissions():
    rule = p.needs("events:ingest", "interactions:write")
    assert rule.allows(frozenset({"interactions:write"}))
    assert rule.allows(frozenset({"events:ingest"}))
    assert not rule.allows(frozenset({"customers:read"}))
    assert SIGNED_IN.allows(frozenset()) and PUBLIC.allows(frozenset())
    with pytest.raises(ValueError, match="unknown permission"):
        p.needs("customers:reed")


def test_key_scopes_expand_roles_and_refuse_unknown_names():
    assert p.expand(["events:ingest"]) == {"events:ingest"}
    assert p.expand(["marketing", "audit:read"]) == ROLES["marketing"] | {"audit:read"}
    with pytest.raises(ValueError, match="unknown scope 'superuser'"):
        p.expand(["superuser"])


@pytest.mark.parametrize(
    ("method", "path", "customer", "audited"),
    [
        ("GET", "/v1/customers/{customer_id}", 7, True),  # one customer's data
        ("GET", "/v1/customers", None, True),  # search shows personal data
        ("POST", "/v1/events", None, True),  # a change
        ("GET", "/v1/sources", None, False),  # nothing about a person
        ("GET", "/v1/me", None, False),
    ],
)
def test_what_is_audited(method, path, customer, audited):
    assert p.should_audit(method, p.rule_for(method, path), customer) is audited


def test_the_readme_matrix_is_the_one_in_the_code():
    text = README.read_text(encoding="utf-8")
    assert p.matrix_markdown() in text, (
        "README.md's role matrix differs from auth/permissions.py; paste this:\n\n"
        + p.matrix_markdown()
    )
