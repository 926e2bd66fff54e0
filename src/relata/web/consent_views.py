"""Consent in the web UI: the public confirm and unsubscribe pages, and the 360° view's panel.

The public pages answer people following a link from an e-mail: no login, nothing about
them beyond the purpose and channel the link is for, and the right status for a link
that is unknown (404), expired or used (410). The panel on the 360° view shows the
derived state and records grants, revocations and corrections from a form.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from relata.api.deps import WriteSession, principal_of
from relata.consent import rectify
from relata.consent import service as consent
from relata.consent.errors import (
    ConsentError,
    CustomerErased,
    CustomerNotFound,
    TokenGone,
    TokenInvalid,
)
from relata.consent.ledger import CHANNELS, UNKNOWN
from relata.ingest.normalise import CANONICAL_FIELDS
from relata.web.i18n import Locale

router = APIRouter(include_in_schema=False)
LEDGER_SHOWN = 20
MAX_FIELD = 500
MESSAGES = ("saved", "corrected")  # what ?consent= may announce after a form
NO_STORE = {"Cache-Control": "no-store"}  # a link's answer is the person's own business


def mount(app: FastAPI) -> None:
    from relata.web.views import templates

    app.include_router(router)
    templates.env.globals["consent_panel"] = consent_panel


def _views() -> Any:
    from relata.web import views

    return views


def _evidence(request: Request, form: str) -> dict[str, Any]:
    principal = principal_of(request)
    return {
        "ip": request.client.host if request.client else None,
        "user_agent": (request.headers.get("user-agent") or "")[:300] or None,
        "form": form,
        "user": principal.name if principal is not None else None,
    }


def purpose_label(loc: Locale, purpose: str) -> str:
    return loc.t_or(f"consent.purpose.{purpose}", purpose.replace("_", " "))


def channel_label(loc: Locale, channel: str) -> str:
    return loc.t_or(f"consent.channel.{channel}", channel)


# --- the public pages ----------------------------------------------------------------------


def _public(
    request: Request, status_code: int, kind: str, purpose: str = "", channel: str = ""
) -> HTMLResponse:
    views = _views()
    loc = views.locale_of(request)
    context = {
        "kind": kind,
        "title": loc.t(f"public.{kind}.title"),
        "text": loc.t(
            f"public.{kind}.text",
            purpose=purpose_label(loc, purpose),
            channel=channel_label(loc, channel),
        ),
    }
    response = views.render(request, "consent_public.html", context, status_code)
    response.headers.update(NO_STORE)
    return response


def _refused(request: Request, exc: ConsentError) -> HTMLResponse:
    if isinstance(exc, TokenGone):
        return _public(request, 410, exc.reason)
    if isinstance(exc, CustomerErased):
        return _public(request, 410, "invalid")
    if isinstance(exc, TokenInvalid | CustomerNotFound):
        return _public(request, 404, "invalid")
    return _public(request, 422, "invalid")


@router.api_route("/c/confirm/{token}", methods=["GET", "POST"], name="consent_confirm")
def confirm_page(session: WriteSession, request: Request, token: str) -> Response:
    """Double opt-in: following the link confirms the pending consent, once."""
    settings = request.app.state.settings
    try:
        done = consent.confirm(session, settings, token[:200], _evidence(request, "confirm-link"))
    except ConsentError as exc:
        return _refused(request, exc)
    return _public(request, 200, "confirmed", done.purpose, done.channel)


@router.api_route("/c/unsubscribe/{token}", methods=["GET", "POST"], name="consent_unsubscribe")
def unsubscribe_page(session: WriteSession, request: Request, token: str) -> Response:
    """One click revokes; POST is RFC 8058's one-click unsubscribe from the mail client."""
    settings = request.app.state.settings
    try:
        claim, _ = consent.unsubscribe(
            session, settings, token[:300], _evidence(request, "unsubscribe-link")
        )
    except ConsentError as exc:
        return _refused(request, exc)
    return _public(request, 200, "unsubscribed", claim.purpose, claim.channel)


# --- the panel on the 360° view ------------------------------------------------------------


def csrf_value(request: Request) -> str:
    """The token a form must send back when signed in (auth/gate.py checks it); else ""."""
    principal = principal_of(request)
    return principal.csrf_token if principal is not None and principal.csrf_token else ""


def _same_origin(request: Request) -> bool:
    """Refuse a form posted from another site (CSRF) by what every browser tells us.

    Browsers send ``Origin`` (and ``Sec-Fetch-Site``) with every form POST; a page of
    another site cannot forge them. A signed-in user's token is checked by the gate too.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser, or one too old to send either: nothing forged it
    return urlsplit(origin).netloc == request.headers.get("host", "")


def consent_panel(request: Request, customer_id: int) -> dict[str, Any]:
    """What ``_consent.html`` shows; called by the template of the 360° view."""
    views = _views()
    settings = request.app.state.settings
    loc = views.locale_of(request)
    with request.app.state.db.session(write=False) as session:
        states = consent.states(session, customer_id, settings)
        ledger = consent.entries(session, customer_id)[-LEDGER_SHOWN:][::-1]
    return {
        "purposes": [(p, purpose_label(loc, p)) for p in settings.consent_purposes],
        "channels": [(c, channel_label(loc, c)) for c in CHANNELS],
        "state": lambda p, c: states.get((p, c), UNKNOWN),
        "ledger": ledger,
        "purpose_label": lambda p: purpose_label(loc, p),
        "channel_label": lambda c: channel_label(loc, c),
        "fields": CANONICAL_FIELDS,
        "csrf": csrf_value(request),
        "message": message
        if (message := request.query_params.get("consent")) in MESSAGES
        else None,
    }


class _PanelError(Exception):
    pass


async def _form(request: Request) -> dict[str, str]:
    try:
        form = await request.form()
    except Exception:  # a body that is not a form: the page answers 422, never 500
        raise _PanelError("form") from None
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    if any("\x00" in v or len(v) > MAX_FIELD for v in values.values()):
        raise _PanelError("form")
    return {k: v.strip() for k, v in values.items()}


def _back(request: Request, customer_id: int, message: str) -> RedirectResponse:
    target = _views()._path(request, "customer_page", customer_id=customer_id)
    return RedirectResponse(f"{target}?consent={message}#consent", status_code=303)


def _panel_error(request: Request, status: int, key: str, detail: str = "") -> HTMLResponse:
    views = _views()
    loc = views.locale_of(request)
    text = loc.t(f"consent.error.{key}") + (f" {detail}" if detail else "")
    return views._error(request, status, loc.t("consent.error.title"), text)


def _customer(request: Request, raw: str) -> int | None:
    return _views()._customer_id(raw)


@router.post("/customers/{customer_id}/consents", name="consent_panel_post")
async def post_panel(request: Request, customer_id: str) -> Response:
    """Grant or revoke from the panel; back to the 360° view."""
    cid = _customer(request, customer_id)
    if cid is None:
        return _panel_error(request, 404, "customer")
    try:
        form = await _form(request)
    except _PanelError:
        return _panel_error(request, 422, "form")
    if not _same_origin(request):
        return _panel_error(request, 403, "csrf")
    action = form.get("action", "")
    if action not in ("grant", "revoke"):  # a request needs a token: the API's opt-in
        return _panel_error(request, 422, "invalid", f"action {action[:20]!r}")
    evidence = {**_evidence(request, "consent-panel"), "note": form.get("note") or None}
    try:
        with request.app.state.db.session() as session:
            entry = consent.record(
                session,
                request.app.state.settings,
                cid,
                form.get("purpose", ""),
                form.get("channel", ""),
                action,
                via="ui",
                text_version=form.get("text_version") or None,
                evidence=evidence,
            )
            holder = entry.customer_id
    except CustomerNotFound:
        return _panel_error(request, 404, "customer")
    except CustomerErased:
        return _panel_error(request, 410, "erased")
    except ConsentError as exc:
        return _panel_error(request, 422, "invalid", str(exc))
    return _back(request, holder, "saved")


@router.post("/customers/{customer_id}/rectify", name="rectify_post")
async def post_rectify(request: Request, customer_id: str) -> Response:
    """Art. 16: correct one golden field from the panel; logged on the timeline."""
    cid = _customer(request, customer_id)
    if cid is None:
        return _panel_error(request, 404, "customer")
    try:
        form = await _form(request)
    except _PanelError:
        return _panel_error(request, 422, "form")
    if not _same_origin(request):
        return _panel_error(request, 403, "csrf")
    principal = principal_of(request)
    try:
        with request.app.state.db.session() as session:
            done = rectify.rectify(
                session,
                request.app.state.settings,
                cid,
                {form.get("field", ""): form.get("value", "")},
                reason=form.get("reason") or None,
                via="ui",
                user=principal.name if principal is not None else None,
            )
    except CustomerNotFound:
        return _panel_error(request, 404, "customer")
    except CustomerErased:
        return _panel_error(request, 410, "erased")
    except ConsentError as exc:
        return _panel_error(request, 422, "invalid", str(exc))
    return _back(request, done.customer_id, "corrected")
