"""The one gate every route passes: authenticate, check CSRF, authorise, and audit.

Two pieces. :func:`gate` is an app-wide dependency (``FastAPI(dependencies=[...])``): it
runs for every API and page route once the router has chosen it, so it knows the route's
path template (``request.scope["route"]``) and looks its rule up in
``auth/permissions.ROUTES``. :class:`AuditLog` is an ASGI middleware around the app: it
writes the audit row the gate prepared, with the final status code, before the response
leaves; if the row cannot be written, the caller gets a 503 instead of the data. Who a
key or session belongs to is remembered for a few seconds per process (auth/cache.py).

FastAPI reads a request's body before it solves dependencies, so a malformed JSON body
is answered 422 before the gate says 401; the schema is public at /openapi.json anyway,
and an empty or missing body gets the 401.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relata.auth import audit, passwords, service
from relata.auth.cache import PrincipalCache
from relata.auth.permissions import (
    UNMAPPED,
    UNSAFE_METHODS,
    Principal,
    rule_for,
    should_audit,
)
from relata.db import Database, utcnow
from relata.writer import Writer, shared

log = logging.getLogger("relata.auth")
MAX_ID = 2**63 - 1
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
AUDIT_KEY = "audit_entry"  # in scope["state"]: what the middleware writes

ForbiddenPage = Callable[[Request, Principal, str], Response]


@dataclass(frozen=True, slots=True)
class Credentials:
    kind: str  # "key" (Authorization: Bearer) | "cookie" (web session)
    secret: str

    @property
    def cache_key(self) -> str:
        """What the principal cache files it under: a digest, never the secret itself."""
        return f"{self.kind}:{passwords.digest(self.secret)}"


def forget(app: FastAPI, creds: Credentials | None = None) -> None:
    """This process stops trusting a credential (or all of them) now; others within
    ``RELATA_AUTH_CACHE_SECONDS`` (auth/cache.py)."""
    cache: PrincipalCache = app.state.principals
    if creds is None:
        cache.clear()
    else:
        cache.forget(creds.cache_key)


class Unauthenticated(Exception):
    def __init__(self, creds: Credentials | None, page: bool) -> None:
        self.creds, self.page = creds, page


class Forbidden(Exception):
    def __init__(self, principal: Principal, message: str, page: bool, csrf: bool) -> None:
        super().__init__(message)
        self.principal, self.page, self.csrf = principal, page, csrf


def route_template(request: Request) -> str | None:
    route = request.scope.get("route")
    return getattr(route, "path_format", None) or getattr(route, "path", None)


def credentials(request: Request) -> Credentials | None:
    header = request.headers.get("authorization")
    if header is not None:
        # An Authorization header is never ignored in favour of a cookie.
        scheme, _, value = header.partition(" ")
        return Credentials("key", value.strip() if scheme.lower() == "bearer" else "")
    token = request.cookies.get(service.SESSION_COOKIE)
    return Credentials("cookie", token) if token else None


def authenticate(db: Database, creds: Credentials) -> Principal | None:
    # A plain connection, not a Session: this runs on every request (see service.py).
    with db.engine.connect() as conn:
        if creds.kind == "key":
            return service.principal_for_api_key(conn, creds.secret, utcnow())
        return service.principal_for_session(conn, creds.secret, utcnow())


def _id(raw: object) -> int | None:
    text = str(raw or "")
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


def customer_of(request: Request) -> int | None:
    """The customer a request is about: ``customer_id`` in the path, else in the query."""
    if "customer_id" in request.path_params:
        return _id(request.path_params["customer_id"])
    return _id(request.query_params.get("customer_id"))


def is_page(template: str) -> bool:
    """Web UI pages answer with HTML and redirects; everything under /v1 is the JSON API."""
    return not template.startswith("/v1/")


async def _csrf_token(request: Request) -> str | None:
    token = request.headers.get(CSRF_HEADER)
    content_type = request.headers.get("content-type", "")
    if token is None and content_type.startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(CSRF_FIELD)  # FastAPI caches the parsed form
        token = value if isinstance(value, str) else None
    return token


async def gate(request: Request) -> None:
    """The app-wide dependency. Raises :class:`Unauthenticated` (401, or a redirect to the
    login page) or :class:`Forbidden` (403); otherwise the principal is on ``request.state``."""
    template = route_template(request)
    method = request.method
    rule = rule_for(method, template) if template else UNMAPPED
    if rule.public:
        return
    page = template is not None and is_page(template)
    creds = credentials(request)
    principal = None
    if creds is not None:
        cache: PrincipalCache = request.app.state.principals
        principal = cache.get(creds.cache_key, utcnow())
        if principal is None:
            principal = await run_in_threadpool(authenticate, request.app.state.db, creds)
            if principal is not None:
                cache.put(creds.cache_key, principal)
    if principal is None:
        raise Unauthenticated(creds, page)
    request.state.principal = principal

    customer_id = customer_of(request)
    if should_audit(method, rule, customer_id):
        entry = audit.AuditRecord(
            at=utcnow(),
            actor_kind=principal.kind,
            actor_id=principal.id,
            actor_name=principal.name,
            action="change" if method in UNSAFE_METHODS else "read",
            method=method,
            route=template or request.url.path,
            customer_id=customer_id,
            status=0,
        )
        # From here on a refusal is audited too: a forged form is worth knowing about.
        setattr(request.state, AUDIT_KEY, entry)

    # Only cookies ride along on a cross-site request; a key in a header cannot.
    cookie = creds is not None and creds.kind == "cookie"
    if (
        cookie
        and method in UNSAFE_METHODS
        and not passwords.same(await _csrf_token(request), principal.csrf_token)
    ):
        raise Forbidden(principal, "missing or wrong CSRF token; reload the page", page, True)
    if not principal.allowed(rule):
        needed = "an admin" if rule is UNMAPPED else f"the permission {rule.label()}"
        raise Forbidden(principal, f"forbidden: {method} {template} needs {needed}", page, False)


def pending_audit(request: Request, status: int) -> audit.AuditRecord | None:
    """The audit row the gate prepared for this request, with ``status``: for a hot route
    that writes it in its own transaction, then calls :func:`audited`."""
    entry = request.scope.get("state", {}).get(AUDIT_KEY)
    return None if entry is None else replace(entry, status=status)


def audited(request: Request) -> None:
    """The request's audit row is committed: the middleware need not write it."""
    request.scope.get("state", {}).pop(AUDIT_KEY, None)


def _unauthenticated_response(request: Request, exc: Unauthenticated) -> Response:
    response: Response
    if exc.page and request.method in ("GET", "HEAD"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        login = request.scope.get("root_path", "") + "/login?next=" + quote(target, safe="")
        response = RedirectResponse(login, status_code=303)
    elif exc.creds is None:
        response = JSONResponse(
            {"detail": "authentication required: sign in, or send 'Authorization: Bearer <key>'"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    elif exc.creds.kind == "key":
        response = JSONResponse(
            {"detail": "invalid, revoked or expired API key"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    else:
        response = JSONResponse(
            {"detail": "your session has expired or is invalid; sign in again"},
            status_code=401,
            headers={"WWW-Authenticate": 'Cookie realm="relata"'},
        )
    if exc.creds is not None and exc.creds.kind == "cookie":
        response.delete_cookie(service.SESSION_COOKIE, path="/")
    return response


class AuditLog:
    """Writes the audit row :func:`gate` prepared, with the response's status, through the
    process's group-commit writer (one transaction for the rows of concurrent requests and
    the decision log, see writer.py), committed before the response is sent: no data
    leaves unaudited, and a failed request (4xx, 5xx) is audited as such."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        writer: Writer = scope["app"].state.audit_writer
        started = refused = False

        async def send_after_audit(message: Message) -> None:
            nonlocal started, refused
            if message["type"] == "http.response.start" and not started:
                started = True
                entry = state.get(AUDIT_KEY)
                if entry is not None and not await _write(writer, entry, message["status"]):
                    refused = True
                    await _unavailable()(scope, receive, send)
                    return
            if not refused:
                await send(message)

        try:
            await self.app(scope, receive, send_after_audit)
        except Exception:
            entry = state.get(AUDIT_KEY)
            if not started and entry is not None:
                await _write(writer, entry, 500)
            raise


async def _write(writer: Writer, entry: audit.AuditRecord, status: int) -> bool:
    """Through a group-commit writer: the rows of concurrent requests share one transaction
    and one commit (each still committed before its response leaves, and committed even
    when the request fails). A separate write transaction per request cost a thread
    hand-off, a ``BEGIN IMMEDIATE`` and a commit each and queued every POST on the write lock."""
    row = replace(entry, status=status)
    try:
        await writer.submit_async(lambda conn: audit.record(conn, row))
    except SQLAlchemyError:
        log.exception("could not write the audit log")
        return False
    return True


def _unavailable() -> JSONResponse:
    return JSONResponse(
        {"detail": "the database is unavailable; try again shortly"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


def install(app: FastAPI, forbidden_page: ForbiddenPage | None = None) -> None:
    """The audit middleware and the answers to :class:`Unauthenticated` and :class:`Forbidden`;
    :func:`gate` itself is passed to ``FastAPI(dependencies=...)``."""
    app.state.principals = PrincipalCache(app.state.settings.auth_cache_seconds)
    app.state.audit_writer = shared(app.state.db)  # stopped by the app's lifespan
    app.add_middleware(AuditLog)

    async def unauthenticated(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Unauthenticated)
        return _unauthenticated_response(request, exc)

    async def forbidden(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Forbidden)
        if exc.page and forbidden_page is not None:
            reason = "csrf" if exc.csrf else "role"
            return forbidden_page(request, exc.principal, reason)
        return JSONResponse({"detail": str(exc)}, status_code=403)

    app.add_exception_handler(Unauthenticated, unauthenticated)
    app.add_exception_handler(Forbidden, forbidden)
    _document_bearer_keys(app)


def _document_bearer_keys(app: FastAPI) -> None:
    """OpenAPI names the API key scheme, so /docs offers "Authorize" for trying routes."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes["apiKey"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "an API key from `relata apikeys create` (rk_…)",
        }
        schema["security"] = [{"apiKey": []}]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
