"""Signing in and out, the audit log page, and the page for a refused request.

The login form is protected against cross-site submission by a double-submit token: GET
/login sets a random token in a cookie (SameSite=Strict, path /login) and in a hidden
field; POST /login must bring both, equal. No session exists yet to tie a token to, and
unlike an Origin check this works behind proxies that drop or rewrite the header.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from relata.api.deps import ReadSession, principal_of
from relata.auth import audit, gate, passwords, service
from relata.auth.permissions import Principal
from relata.config import Settings
from relata.db import Database, utcnow
from relata.web.views import _customer_id, _error, locale_of, render

router = APIRouter(include_in_schema=False)
LOGIN_COOKIE = "relata_login"
AUDIT_PAGE = 100
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "testserver")


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def safe_next(raw: str | None) -> str:
    """Only a path on this site: never ``//evil.example`` or ``https://…`` (open redirect)."""
    if not raw or not raw.startswith("/") or raw.startswith(("//", "/\\")):
        return "/"
    if any(ord(ch) < 32 for ch in raw) or len(raw) > 2000:
        return "/"
    return raw


def _login_form(
    request: Request, next_path: str, status_code: int = 200, error: str | None = None
) -> HTMLResponse:
    settings = _settings(request)
    token = passwords.new_token()
    insecure = (
        settings.secure_cookies
        and request.url.scheme != "https"
        and request.url.hostname not in LOCAL_HOSTS
    )
    context: dict[str, Any] = {
        "next": next_path,
        "login_token": token,
        "error": error,
        "insecure": insecure,
        "username": "",
    }
    response = render(request, "login.html", context, status_code)
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=settings.secure_cookies,
    )
    return response


@router.get("/login", response_class=HTMLResponse, name="login_page")
def login_page(request: Request, next: str = "") -> Response:
    return _login_form(request, safe_next(next))


@router.post("/login", response_class=HTMLResponse, name="login")
def login(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    csrf_token: str = Form(""),
    next: str = Form("/"),
) -> Response:
    loc = locale_of(request)
    target = safe_next(next)
    if not passwords.same(csrf_token, request.cookies.get(LOGIN_COOKIE)):
        return _login_form(request, target, 403, loc.t("login.expired"))
    settings = _settings(request)
    db: Database = request.app.state.db
    ip = request.client.host if request.client else "unknown"
    with db.session() as session:
        ticket = service.begin_login(session, username, ip, settings, utcnow())
    if isinstance(ticket, service.Throttled):
        minutes = max(1, -(-ticket.retry_after // 60))
        response = _login_form(request, target, 429, loc.t("login.throttled", minutes=minutes))
        response.headers["Retry-After"] = str(ticket.retry_after)
        return response
    # Outside any transaction: argon2 takes tens of milliseconds on purpose.
    ok = passwords.verify_password(ticket.password_hash, password)
    token = None
    if ok and ticket.password_hash:
        rehash = passwords.needs_rehash(ticket.password_hash)
        new_hash = passwords.hash_password(password) if rehash else None
        with db.session() as session:
            token = service.finish_login(session, ticket, settings, utcnow(), new_hash)
    if token is None:
        response = _login_form(request, target, 401, loc.t("login.failed"))
        response.headers["WWW-Authenticate"] = 'Cookie realm="relata"'
        return response
    if previous := request.cookies.get(service.SESSION_COOKIE):
        with db.session() as session:  # signing in again replaces the old session
            service.end_session(session, previous)
        gate.forget(request.app, gate.Credentials("cookie", previous))
    response = RedirectResponse(request.scope.get("root_path", "") + target, status_code=303)
    response.set_cookie(
        service.SESSION_COOKIE,
        token,
        max_age=int(settings.session_hours * 3600),
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
    )
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout", name="logout")
def logout(request: Request) -> Response:
    token = request.cookies.get(service.SESSION_COOKIE)
    principal = principal_of(request)
    if token and principal is not None and principal.kind == "user":
        with request.app.state.db.session() as session:
            service.end_session(session, token)
        gate.forget(request.app, gate.Credentials("cookie", token))
    response = RedirectResponse(request.scope.get("root_path", "") + "/login", status_code=303)
    response.delete_cookie(service.SESSION_COOKIE, path="/")
    return response


@router.get("/audit", response_class=HTMLResponse, name="audit_page")
def audit_page(
    session: ReadSession, request: Request, customer_id: str = "", before_id: str = ""
) -> Response:
    loc = locale_of(request)
    raw = customer_id.strip()
    wanted = _customer_id(raw) if raw else None
    if raw and wanted is None:
        text = loc.t("audit.bad_id", id=raw[:40])
        return _error(request, 422, loc.t("audit.title"), text)
    rows = audit.entries(session, wanted, AUDIT_PAGE, _customer_id(before_id))
    older = rows[-1].id if len(rows) == AUDIT_PAGE else None
    context = {"rows": rows, "customer_id": wanted, "older": older}
    return render(request, "audit.html", context)


def forbidden_page(request: Request, principal: Principal, reason: str) -> Response:
    """What the gate shows a signed-in user on a page their role does not allow, or on a
    form that came without its CSRF token (``reason`` "csrf")."""
    loc = locale_of(request)
    if reason == "csrf":
        return _error(request, 403, loc.t("error.forbidden"), loc.t("error.csrf_text"))
    role = loc.t_or(f"role.{principal.role}", principal.role or loc.t("role.api_key"))
    return _error(request, 403, loc.t("error.forbidden"), loc.t("error.forbidden_text", role=role))
