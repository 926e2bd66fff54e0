"""Who may do what: permissions, roles, and the one table of route → permission. Pure.

Every HTTP route of the app is looked up here by (method, path template) by the gate
(``auth/gate.py``). A route missing from :data:`ROUTES` needs every permission, which
only an admin has: a new route is closed until someone decides who may call it, and
``tests/test_permissions_matrix.py`` lists it as unmapped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

PERMISSIONS: dict[str, str] = {
    "customers:read": "search customers and open the 360° view",
    "customers:read_contact": "see e-mail, phone and street unmasked",
    "customers:write": "rectify and edit a customer's data",
    "interactions:write": "record interactions (post events)",
    "events:ingest": "post events (integrations)",
    "imports:write": "import files",
    "sources:manage": "register sources",
    "quarantine:manage": "see and retry refused rows",
    "merges:read": "see the merge log",
    "merges:write": "undo merges",
    "review:manage": "decide the matching review queue",
    "consent:read": "see consent",
    "consent:write": "record consent",
    "gdpr:export": "export a person's data",
    "gdpr:erase": "erase a person",
    "audit:read": "read the audit log",
    "segments:read": "see segments",
    "segments:write": "define segments",
    "campaigns:write": "run campaigns",
    "offers:write": "define offers",
    "decisions:request": "ask for next best offers and report responses (channels, agents)",
    "reports:read": "see reports",
    "users:manage": "manage users and API keys",
}
ALL = frozenset(PERMISSIONS)

ROLES: dict[str, frozenset[str]] = {
    "admin": ALL,
    # Marketing works on groups of customers; a single person's contact data stays masked.
    "marketing": frozenset(
        {
            "customers:read",
            "segments:read",
            "segments:write",
            "campaigns:write",
            "offers:write",
            "reports:read",
        }
    ),
    # Service and sales agents talk to the customer: they need the full 360° view.
    "agent": frozenset(
        {
            "customers:read",
            "customers:read_contact",
            "customers:write",
            "interactions:write",
            "consent:read",
            "consent:write",
            "decisions:request",
        }
    ),
    # Analysts see aggregates and pseudonymised data, never one named customer.
    "analyst": frozenset({"reports:read"}),
    # The data protection officer answers data subjects and checks who did what.
    "dpo": frozenset(
        {
            "customers:read",
            "customers:read_contact",
            "consent:read",
            "consent:write",
            "gdpr:export",
            "gdpr:erase",
            "audit:read",
            "merges:read",
        }
    ),
}


@dataclass(frozen=True, slots=True)
class Rule:
    """What a route needs: nothing (public), a signed-in principal, or any one permission."""

    any_of: frozenset[str] = frozenset()
    public: bool = False

    def allows(self, granted: frozenset[str]) -> bool:
        return self.public or not self.any_of or bool(self.any_of & granted)

    def label(self) -> str:
        if self.public:
            return "public"
        return " or ".join(sorted(self.any_of)) or "signed in"


PUBLIC = Rule(public=True)
SIGNED_IN = Rule()
# A route nobody mapped: every permission, so admin only.
UNMAPPED = Rule(any_of=frozenset({"*"}))


def needs(*permissions: str) -> Rule:
    unknown = set(permissions) - ALL
    if unknown:
        raise ValueError(f"unknown permission(s) {sorted(unknown)}")
    return Rule(any_of=frozenset(permissions))


ROUTES: dict[tuple[str, str], Rule] = {
    # Public: no credentials. Consent links arrive in e-mails to the person themself.
    ("GET", "/health"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,  # double-submit token checked by the login view itself
    ("GET", "/static"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/c/confirm/{token}"): PUBLIC,
    ("POST", "/c/confirm/{token}"): PUBLIC,
    ("GET", "/c/unsubscribe/{token}"): PUBLIC,
    ("POST", "/c/unsubscribe/{token}"): PUBLIC,  # RFC 8058 one-click unsubscribe
    # Any signed-in principal.
    ("POST", "/logout"): SIGNED_IN,
    ("GET", "/v1/me"): SIGNED_IN,
    # Intake.
    ("POST", "/v1/events"): needs("events:ingest", "interactions:write"),
    ("GET", "/v1/sources"): needs("sources:manage", "imports:write"),
    ("POST", "/v1/sources"): needs("sources:manage"),
    ("GET", "/v1/quarantine"): needs("quarantine:manage"),
    # Customers: the API and the web pages.
    ("GET", "/v1/customers"): needs("customers:read"),
    ("GET", "/v1/customers/{customer_id}"): needs("customers:read"),
    ("GET", "/v1/customers/{customer_id}/timeline"): needs("customers:read"),
    ("GET", "/v1/customers/{customer_id}/holdings"): needs("customers:read"),
    ("GET", "/"): needs("customers:read"),
    ("GET", "/customers/{customer_id}"): needs("customers:read"),
    ("GET", "/customers/{customer_id}/timeline"): needs("customers:read"),
    # Consent and the data subject's rights (consent/api.py, web/consent_views.py).
    ("GET", "/v1/customers/{customer_id}/permissions"): needs("consent:read"),
    ("GET", "/v1/customers/{customer_id}/consents"): needs("consent:read"),
    ("GET", "/v1/customers/{customer_id}/consents/{entry_id}"): needs("consent:read"),
    ("POST", "/v1/customers/{customer_id}/consents"): needs("consent:write"),
    ("POST", "/v1/customers/{customer_id}/consents/opt-in"): needs("consent:write"),
    # A message's unsubscribe link: whoever sends it, a campaign or an agent's e-mail.
    ("POST", "/v1/customers/{customer_id}/unsubscribe-links"): needs(
        "consent:write", "campaigns:write"
    ),
    ("GET", "/v1/customers/{customer_id}/export"): needs("gdpr:export"),
    ("PATCH", "/v1/customers/{customer_id}"): needs("customers:write"),
    ("POST", "/customers/{customer_id}/consents"): needs("consent:write"),
    ("POST", "/customers/{customer_id}/rectify"): needs("customers:write"),
    # Identity.
    ("GET", "/v1/merges"): needs("merges:read"),
    ("POST", "/v1/merges/{merge_id}/undo"): needs("merges:write"),
    # Duplicate matching: the review queue and the waterfall of a pair (issue 4).
    ("GET", "/v1/reviews"): needs("review:manage"),
    ("GET", "/v1/reviews/{review_id}"): needs("review:manage"),
    ("POST", "/v1/reviews/{review_id}/accept"): needs("review:manage"),
    ("POST", "/v1/reviews/{review_id}/reject"): needs("review:manage"),
    ("GET", "/v1/matching/explain"): needs("review:manage"),
    ("GET", "/reviews"): needs("review:manage"),
    ("GET", "/reviews/explain"): needs("review:manage"),
    ("GET", "/reviews/{review_id}"): needs("review:manage"),
    ("POST", "/reviews/{review_id}/accept"): needs("review:manage"),
    ("POST", "/reviews/{review_id}/reject"): needs("review:manage"),
    # Decisions: asking and answering is for channels and agents; the catalogue for marketing.
    ("POST", "/v1/decisions"): needs("decisions:request"),
    ("GET", "/v1/decisions/{decision_id}"): needs("decisions:request", "customers:read"),
    ("POST", "/v1/decisions/{decision_id}/responses"): needs("decisions:request"),
    ("POST", "/v1/decision-responses"): needs("decisions:request"),
    ("GET", "/v1/decision-performance"): needs("reports:read", "offers:write"),
    ("GET", "/v1/offers"): needs("offers:write", "reports:read"),
    ("POST", "/v1/offers"): needs("offers:write"),
    ("GET", "/v1/offers/{key}"): needs("offers:write", "reports:read"),
    ("PATCH", "/v1/offers/{key}"): needs("offers:write"),
    ("DELETE", "/v1/offers/{key}"): needs("offers:write"),
    ("GET", "/v1/offers/{key}/versions"): needs("offers:write", "reports:read"),
    ("GET", "/v1/contact-policies"): needs("offers:write", "reports:read"),
    ("POST", "/v1/contact-policies"): needs("offers:write"),
    ("PATCH", "/v1/contact-policies/{name}"): needs("offers:write"),
    ("GET", "/decisions/offers"): needs("offers:write", "reports:read"),
    ("GET", "/decisions/offers/new"): needs("offers:write"),
    ("POST", "/decisions/offers/new"): needs("offers:write"),
    ("GET", "/decisions/offers/{key}"): needs("offers:write", "reports:read"),
    ("POST", "/decisions/offers/{key}"): needs("offers:write"),
    ("GET", "/decisions/simulate"): needs("offers:write", "decisions:request"),
    ("GET", "/decisions/performance"): needs("reports:read", "offers:write"),
    # Segments and the rule language (segments/). Members are ids; the counts, aggregates.
    ("GET", "/v1/segments"): needs("segments:read"),
    ("POST", "/v1/segments"): needs("segments:write"),
    ("GET", "/v1/segments/{name}"): needs("segments:read"),
    ("PUT", "/v1/segments/{name}"): needs("segments:write"),
    ("DELETE", "/v1/segments/{name}"): needs("segments:write"),
    ("GET", "/v1/segments/{name}/versions"): needs("segments:read"),
    ("GET", "/v1/segments/{name}/count"): needs("segments:read"),
    ("GET", "/v1/segments/{name}/members"): needs("segments:read"),
    ("POST", "/v1/segments/{name}/refresh"): needs("segments:write"),
    # The rule language also writes offer eligibility and contact policies.
    ("POST", "/v1/rules/check"): needs("segments:write", "offers:write"),
    ("GET", "/v1/rules/fields"): needs("segments:read", "offers:write"),
    ("GET", "/segments"): needs("segments:read"),
    ("GET", "/segments/new"): needs("segments:write"),
    ("GET", "/segments/{name}"): needs("segments:read"),
    ("POST", "/segments/new"): needs("segments:write"),
    ("POST", "/segments/{name}"): needs("segments:write"),
    ("POST", "/segments/{name}/refresh"): needs("segments:write"),
    ("POST", "/segments/{name}/delete"): needs("segments:write"),
    # Access control itself.
    ("GET", "/v1/audit"): needs("audit:read"),
    ("GET", "/audit"): needs("audit:read"),
    ("GET", "/v1/users"): needs("users:manage"),
    ("POST", "/v1/users"): needs("users:manage"),
    ("POST", "/v1/users/{username}/disable"): needs("users:manage"),
    ("GET", "/v1/api-keys"): needs("users:manage"),
    ("POST", "/v1/api-keys"): needs("users:manage"),
    ("DELETE", "/v1/api-keys/{name}"): needs("users:manage"),
}

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Reads that show personal data are audited even without a customer id in the path.
PERSONAL_READS = frozenset(
    {
        "customers:read",
        "consent:read",
        "gdpr:export",
        "merges:read",
        "quarantine:manage",
        "review:manage",
        "audit:read",
    }
)


def rule_for(method: str, path: str) -> Rule:
    """The rule of a route; HEAD is a GET without the body."""
    method = "GET" if method == "HEAD" else method
    return ROUTES.get((method, path), UNMAPPED)


def expand(scopes: Iterable[str]) -> frozenset[str]:
    """Scopes of an API key: permission names, or role names standing for their permissions."""
    granted: set[str] = set()
    for scope in scopes:
        if scope in ROLES:
            granted |= ROLES[scope]
        elif scope in PERMISSIONS:
            granted.add(scope)
        else:
            known = ", ".join(sorted(ROLES))
            raise ValueError(f"unknown scope {scope!r}: use a permission or a role ({known})")
    return frozenset(granted)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a signed-in user or an API key, with what they may do."""

    kind: str  # "user" | "api_key"
    id: int
    name: str
    permissions: frozenset[str]
    role: str | None = None
    # Set for cookie sessions only: unsafe requests must echo it (CSRF).
    csrf_token: str | None = field(default=None, repr=False)
    # When the session or key ends (None: never); the principal cache honours it.
    valid_until: datetime | None = field(default=None, repr=False, compare=False)

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    def allowed(self, rule: Rule) -> bool:
        if rule is UNMAPPED:
            return self.permissions >= ALL
        return rule.allows(self.permissions)


def should_audit(method: str, rule: Rule, customer_id: int | None) -> bool:
    """Audited: everything about one customer, every change, every read of personal data."""
    return (
        customer_id is not None
        or method in UNSAFE_METHODS
        or rule is UNMAPPED
        or bool(rule.any_of & PERSONAL_READS)
    )


def matrix_markdown() -> str:
    """The role × permission table for the README (a test keeps the two equal)."""
    roles = list(ROLES)
    lines = [
        "| permission | " + " | ".join(roles) + " | what it allows |",
        "|---|" + "---|" * len(roles) + "---|",
    ]
    for perm, text in PERMISSIONS.items():
        marks = " | ".join("✓" if perm in ROLES[r] else "" for r in roles)
        lines.append(f"| `{perm}` | {marks} | {text} |")
    return "\n".join(lines)
