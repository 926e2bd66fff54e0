"""Decisions in the web UI: the offer catalogue and editor, the simulator, offer performance.

Handlers call the decisions services and hand their results to templates. The editor
posts a plain form (with the CSRF token the gate checks); a refused offer comes back as
the same form with the reason, never as a 500.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from relata.api.deps import ReadSession, principal_of
from relata.decisions import offers, reports, service
from relata.decisions.catalogue import KINDS, STATUSES, CatalogueError
from relata.decisions.engine import engine_for
from relata.decisions.permission import ChannelError
from relata.decisions.schemas import (
    DecisionRequest,
    OfferRead,
    OfferUpdate,
    OfferWrite,
    VersionRead,
)
from relata.segments.rules.timing import BERLIN

router = APIRouter(include_in_schema=False)
MAX_FIELD = 10_000
TEXT = ("name", "category", "product_id", "template", "description", "rule")
NUMBERS = ("value", "weight", "cost", "budget")
INTEGERS = (
    "cap_total",
    "cap_daily",
    "max_impressions",
    "impression_window_days",
    "reject_suppress_days",
    "held_days",
)


def mount(app: FastAPI) -> None:
    app.include_router(router)


def _views() -> Any:
    from relata.web import views

    return views


def _channels(request: Request) -> list[str]:
    return sorted(request.app.state.settings.decision_channels)


@router.get("/decisions/offers", response_class=HTMLResponse, name="offers_page")
def offers_page(session: ReadSession, request: Request, archived: bool = False) -> Response:
    found = [OfferRead.model_validate(o) for o in offers.list_offers(session, archived)]
    return _views().render(request, "offers.html", {"offers": found, "archived": archived})


def _blank(request: Request) -> dict[str, Any]:
    settings = request.app.state.settings
    return {
        "key": "",
        "name": "",
        "kind": "product",
        "status": "active",
        "channels": ["web"],
        "placements": [],
        "value": 1.0,
        "weight": 1.0,
        "cost": 0.0,
        "max_impressions": settings.decision_max_impressions,
        "impression_window_days": settings.decision_impression_window_days,
        "reject_suppress_days": settings.decision_reject_suppress_days,
        "suppress_held": "product",
        "held_days": settings.decision_held_days,
        "description": "",
    }


def _editor(
    request: Request,
    offer: dict[str, Any],
    new: bool,
    error: str | None = None,
    versions: list[VersionRead] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context = {
        "offer": offer,
        "new": new,
        "error": error,
        "versions": versions or [],
        "kinds": KINDS,
        "statuses": STATUSES,
        "all_channels": _channels(request),
        "local": _local,
    }
    return _views().render(request, "offer_edit.html", context, status_code)


def _local(value: Any) -> str:
    """A stored time for <input type=datetime-local>, in relata's time zone."""
    if not value:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(BERLIN).strftime("%Y-%m-%dT%H:%M")


@router.get("/decisions/offers/new", response_class=HTMLResponse, name="offer_new")
def offer_new(request: Request) -> Response:
    return _editor(request, _blank(request), new=True)


@router.get("/decisions/offers/{key}", response_class=HTMLResponse, name="offer_edit")
def offer_edit(session: ReadSession, request: Request, key: str) -> Response:
    try:
        offer = OfferRead.model_validate(offers.get_offer(session, key[:100]))
    except offers.OfferNotFound:
        loc = _views().locale_of(request)
        return _views()._error(request, 404, loc.t("offers.not_found"), key[:100])
    history = [VersionRead.model_validate(v) for v in offers.offer_versions(session, offer.key)]
    return _editor(request, offer.model_dump(), new=False, versions=history)


async def _form(request: Request) -> dict[str, Any]:
    form = await request.form()
    values: dict[str, Any] = {}
    for name in (*TEXT, "key", "kind", "status", "suppress_held", "placements"):
        raw = form.get(name)
        if isinstance(raw, str):
            values[name] = raw.replace("\x00", "").strip()[:MAX_FIELD]
    values["channels"] = [c for c in form.getlist("channels") if isinstance(c, str)]
    for name in (*NUMBERS, *INTEGERS):
        raw = form.get(name)
        values[name] = raw.strip() if isinstance(raw, str) and raw.strip() else None
    for name in ("starts_at", "ends_at"):
        raw = form.get(name)
        values[name] = _from_local(raw) if isinstance(raw, str) and raw.strip() else None
    return values


def _from_local(raw: str) -> str:
    """<input type=datetime-local> holds relata's local time; stored as UTC."""
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        return raw  # refused by validation, with the field named
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=BERLIN)
    return moment.astimezone(UTC).isoformat()


def _payload(values: dict[str, Any], new: bool) -> dict[str, Any]:
    data = dict(values)
    data["placements"] = [
        p.strip() for p in (values.get("placements") or "").split(",") if p.strip()
    ]
    for name in ("category", "product_id", "template", "rule"):
        data[name] = data.get(name) or None
    if not new:
        data.pop("key", None)
    return data


def _problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "form"
    return f"{where}: {first.get('msg', 'invalid')}"


def _who(request: Request) -> str | None:
    principal = principal_of(request)
    return principal.name if principal else None


@router.post("/decisions/offers/new", name="offer_create")
async def offer_create(request: Request) -> Response:
    return await _save(request, None)


@router.post("/decisions/offers/{key}", name="offer_save")
async def offer_save(request: Request, key: str) -> Response:
    return await _save(request, key[:100])


async def _save(request: Request, key: str | None) -> Response:
    values = await _form(request)
    new = key is None
    settings = request.app.state.settings
    data = _payload(values, new)
    try:
        with request.app.state.db.session() as session:
            if new:
                saved = offers.create_offer(
                    session, OfferWrite.model_validate(data), settings, _who(request)
                )
            else:
                assert key is not None
                update = OfferUpdate.model_validate(data)
                saved = offers.update_offer(session, key, update, settings, _who(request))
            target = saved.key
    except ValidationError as exc:
        return _editor(
            request,
            {**_blank(request), **data, "key": key or data.get("key", "")},
            new,
            _problem(exc),
            status_code=422,
        )
    except (CatalogueError, offers.OfferExists) as exc:
        return _editor(
            request,
            {**_blank(request), **data, "key": key or data.get("key", "")},
            new,
            str(exc),
            status_code=422,
        )
    except offers.OfferNotFound as exc:
        loc = _views().locale_of(request)
        return _views()._error(request, 404, loc.t("offers.not_found"), str(exc))
    path = _views()._path(request, "offer_edit", key=target)
    return RedirectResponse(f"{path}?saved=1", status_code=303)


@router.get("/decisions/simulate", response_class=HTMLResponse, name="simulator_page")
def simulator_page(
    session: ReadSession,
    request: Request,
    customer: str = "",
    channel: str = "web",
    placement: str = "",
    context: str = "",
    limit: int = 3,
) -> Response:
    """Pick a customer and a channel: the ranked offers and why, nothing logged."""
    result, error = None, None
    context_values = _pairs(context)
    if customer.strip():
        try:
            body = DecisionRequest.model_validate(
                {
                    "customer_id": customer.strip(),
                    "channel": channel,
                    "placement": placement.strip() or None,
                    "context": context_values if isinstance(context_values, dict) else {},
                    "limit": min(max(limit, 1), 20),
                    "explain": True,
                }
            )
            if isinstance(context_values, str):
                raise CatalogueError(context_values)
            engine = engine_for(request.app.state.db, request.app.state.settings)
            result = service.decide(session, engine, request.app.state.settings, body, record=False)
        except ValidationError as exc:
            error = _problem(exc)
        except (CatalogueError, ChannelError, service.CustomerNotFound) as exc:
            error = str(exc)
    context_ = {
        "customer": customer[:30],
        "channel": channel[:16],
        "placement": placement[:100],
        "context": context[:500],
        "limit": limit,
        "channels": _channels(request),
        "result": result,
        "error": error,
    }
    return _views().render(request, "simulate.html", context_, 422 if error else 200)


def _pairs(raw: str) -> dict[str, str] | str:
    """``device=mobile, segment=A`` as a context; a message when it cannot be read."""
    found: dict[str, str] = {}
    for part in raw.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            return f"context: write key=value pairs separated by commas, got {part.strip()[:40]!r}"
        found[key.strip()[:64]] = value.strip()[:200]
    return found


@router.get("/decisions/performance", response_class=HTMLResponse, name="performance_page")
def performance_page(session: ReadSession, request: Request, days: int = 30) -> Response:
    days = min(max(days, 1), 3650)
    rows = reports.performance(session, days)
    return _views().render(request, "performance.html", {"rows": rows, "days": days})
