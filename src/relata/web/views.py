"""Server-rendered pages: customer search and the 360° view, in German and English.

Handlers only call services and hand their results to templates; what the
templates need beyond that (labels, formatted values) is prepared here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from relata.api.deps import ReadSession, principal_of
from relata.profiles import masking
from relata.profiles import service as profiles
from relata.profiles import view as profile_view
from relata.profiles.models import Customer
from relata.profiles.schemas import CustomerRead, CustomerSummary, EventRead, Provenance
from relata.profiles.survivorship import GOLDEN_FIELDS
from relata.profiles.view import MAX_ID
from relata.web import i18n
from relata.web.i18n import Locale

HERE = Path(__file__).parent
SEARCH_LIMIT = 50
MAX_QUERY = 200
ONE_YEAR = 365 * 24 * 3600
SHOWN_FIELDS = GOLDEN_FIELDS  # in the order survivorship decides them
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(
    env=Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
)


def mount(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    from relata.web import consent_views

    consent_views.mount(app)
    from relata.web.review_views import router as review_router

    app.include_router(review_router)
    from relata.web import decision_views

    decision_views.mount(app)
    from relata.web import segment_views

    segment_views.mount(app)


# --- language and rendering ----------------------------------------------------------------


def locale_of(request: Request) -> Locale:
    return Locale(
        i18n.choose(
            request.query_params.get("lang"),
            request.cookies.get(i18n.COOKIE),
            request.headers.get("accept-language"),
        )
    )


def _remember_language(request: Request, response: Response) -> None:
    """An explicit ``?lang=`` is kept in a cookie for the following pages."""
    chosen = request.query_params.get("lang")
    if chosen in i18n.LANGUAGES and chosen != request.cookies.get(i18n.COOKIE):
        response.set_cookie(i18n.COOKIE, chosen, max_age=ONE_YEAR, samesite="lax", httponly=True)


def _path(request: Request, name: str, **params: Any) -> str:
    """A site-relative link, so pages work behind a proxy under any scheme and prefix."""
    path = request.app.url_path_for(name, **{k: str(v) for k, v in params.items()})
    return request.scope.get("root_path", "") + str(path)


def _switch_url(request: Request, loc: Locale) -> str:
    url = request.url.include_query_params(lang=loc.other)
    return f"{url.path}?{url.query}"


def render(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    loc = locale_of(request)
    principal = principal_of(request)
    response = templates.TemplateResponse(
        request,
        template,
        {
            "loc": loc,
            "t": loc.t,
            "path": lambda name, **params: _path(request, name, **params),
            "switch_url": _switch_url(request, loc),
            # Who is signed in: the header's user menu, nav links by permission, and the
            # CSRF token every form and script sends back (auth/gate.py checks it).
            "principal": principal,
            "can": lambda permission: principal is not None and principal.can(permission),
            "csrf_token": principal.csrf_token if principal else None,
            **context,
        },
        status_code=status_code,
        headers=SECURITY_HEADERS,
    )
    _remember_language(request, response)
    return response


def _error(request: Request, status_code: int, title: str, text: str) -> HTMLResponse:
    return render(request, "error.html", {"title": title, "text": text}, status_code)


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """Browsers get an HTML page for a 404 outside the API; API clients get JSON as before."""
    wants_html = "text/html" in request.headers.get("accept", "")
    if exc.status_code == 404 and wants_html and not request.url.path.startswith("/v1"):
        loc = locale_of(request)
        return _error(request, 404, loc.t("error.page_not_found"), "")
    return await http_exception_handler(request, exc)


# --- what the templates show ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GoldenRow:
    field: str
    label: str
    value: str
    provenance: Provenance | None


def golden_rows(customer: CustomerRead, loc: Locale) -> list[GoldenRow]:
    rows = []
    for field in SHOWN_FIELDS:
        value = getattr(customer, field)
        if value is None or value == "":
            continue
        if field == "birth_date":
            shown = loc.date(value)
        elif field == "gender":
            shown = loc.t_or(f"gender.{value}", value)
        else:
            shown = str(value)
        label = loc.t(f"field.{field}")
        rows.append(GoldenRow(field, label, shown, customer.provenance.get(field)))
    return rows


def display_name(customer: CustomerRead | CustomerSummary) -> str:
    return " ".join(p for p in (customer.first_name, customer.last_name) if p)


def event_title(event: EventRead, loc: Locale) -> str:
    if event.name:
        return loc.t_or(f"event.{event.name}", event.name)
    return loc.t_or(f"event.{event.type}", event.type)


def shown(value: Any) -> str:
    """A stored value as one line of text: scalars as they are, the rest as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def summary(properties: dict[str, Any], limit: int = 4) -> str:
    scalars = [
        f"{k}: {v}"
        for k, v in properties.items()
        if isinstance(v, str | int | float) and not isinstance(v, bool)
    ]
    return " · ".join(scalars[:limit])


def in_field_order(data: dict[str, Any]) -> list[tuple[str, Any]]:
    """A record's fields in the order of the golden record, unknown ones after them."""
    order = {f: i for i, f in enumerate(SHOWN_FIELDS)}
    return sorted(data.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))


def pretty(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)


templates.env.globals.update(
    display_name=display_name,
    shown=shown,
    summary=summary,
    pretty=pretty,
    in_field_order=in_field_order,
)


# --- input that cannot reach a service -----------------------------------------------------


def _customer_id(raw: str) -> int | None:
    if not raw.isascii() or not raw.isdigit():
        return None
    number = int(raw)
    return number if 0 < number <= MAX_ID else None


def _contact_visible(request: Request) -> bool:
    principal = principal_of(request)
    return principal is not None and principal.can("customers:read_contact")


def _clean_query(q: str) -> str:
    # PostgreSQL refuses NUL characters in text; nobody searches for them.
    return q.replace("\x00", "").strip()[:MAX_QUERY]


# --- pages ---------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse, name="search_page")
def search_page(session: ReadSession, request: Request, q: str = "") -> Response:
    query = _clean_query(q)
    results = profile_view.search(session, query, SEARCH_LIMIT) if query else []
    if not _contact_visible(request):
        results = [masking.mask_summary(r) for r in results]
    return render(request, "search.html", {"q": query, "results": results})


def _resolve(request: Request, session: Session, raw_id: str, route: str) -> Customer | Response:
    """The customer, a redirect to the customer it was merged into, or a 404 page."""
    loc = locale_of(request)
    customer_id = _customer_id(raw_id)
    customer = profiles.resolve(session, customer_id) if customer_id else None
    if customer is None:
        text = loc.t("error.not_found_text", id=raw_id[:40])
        return _error(request, 404, loc.t("error.not_found"), text)
    if customer.status == "erased":
        text = loc.t("error.erased_text", id=raw_id[:40])
        return _error(request, 410, loc.t("error.erased"), text)
    if customer.id != customer_id:
        target = _path(request, route, customer_id=customer.id)
        response = RedirectResponse(f"{target}?merged_from={customer_id}", status_code=303)
        _remember_language(request, response)
        return response
    return customer


def _bad_cursor(request: Request) -> HTMLResponse:
    loc = locale_of(request)
    return _error(request, 422, loc.t("error.bad_cursor"), loc.t("error.bad_cursor_text"))


@router.get("/customers/{customer_id}", response_class=HTMLResponse, name="customer_page")
def customer_page(
    session: ReadSession,
    request: Request,
    customer_id: str,
    before: str | None = None,
    merged_from: str | None = None,
) -> Response:
    customer = _resolve(request, session, customer_id, "customer_page")
    if isinstance(customer, Response):
        return customer
    page_size = request.app.state.settings.timeline_page_size
    try:
        data = profile_view.view(session, customer, page_size, before)
    except profile_view.CursorError:
        return _bad_cursor(request)
    if not _contact_visible(request):
        data = masking.mask_view(data)
    loc = locale_of(request)
    context = {
        "view": data,
        "c": data.customer,
        "name": display_name(data.customer) or loc.t("customer.anonymous"),
        "golden": golden_rows(data.customer, loc),
        "timeline": data.timeline,
        "event_title": lambda e: event_title(e, loc),
        "paged": before is not None,
        "merged_from": merged_from if _customer_id(merged_from or "") else None,
    }
    return render(request, "customer.html", context)


@router.get(
    "/customers/{customer_id}/timeline", response_class=HTMLResponse, name="timeline_fragment"
)
def timeline_fragment(
    session: ReadSession,
    request: Request,
    customer_id: str,
    before: str | None = None,
) -> Response:
    """Older events as a piece of the 360° view, which relata.js appends in place."""
    customer = _resolve(request, session, customer_id, "timeline_fragment")
    if isinstance(customer, Response):
        return customer
    page_size = request.app.state.settings.timeline_page_size
    try:
        timeline = profile_view.timeline_page(session, customer.id, page_size, before)
    except profile_view.CursorError:
        return _bad_cursor(request)
    if not _contact_visible(request):
        timeline = masking.mask_timeline(timeline)
    loc = locale_of(request)
    context = {
        "customer_id": customer.id,
        "timeline": timeline,
        "event_title": lambda e: event_title(e, loc),
    }
    return render(request, "_timeline.html", context)
