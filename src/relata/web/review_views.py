"""The review queue in the browser: two customers side by side, differences highlighted,
the match weights as a waterfall, and the decision."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from relata.api.deps import ReadSession, WriteSession, principal_of
from relata.identity import review
from relata.identity.matching.models import MatchReview
from relata.profiles import masking
from relata.profiles import service as profiles
from relata.profiles import view as profile_view
from relata.profiles.schemas import CustomerRead
from relata.web.views import SHOWN_FIELDS, _error, _path, locale_of, render

router = APIRouter(include_in_schema=False)
PAGE = 50
MAX_ID = 2**63 - 1
MAX_BAR = 20  # width classes w0…w20 in relata.css: one step a unit of match weight


@dataclass(frozen=True, slots=True)
class FieldRow:
    field: str
    label: str
    left: str
    right: str
    differs: bool


@dataclass(frozen=True, slots=True)
class Bar:
    title: str
    level: str
    left: str
    right: str
    weight: float
    running: float
    width: int
    sign: str  # "pos" | "neg" | "zero"


def _shown(value: Any) -> str:
    return "" if value is None else str(value)


def field_rows(
    a: CustomerRead, b: CustomerRead, labels: Any, masked: bool = False
) -> list[FieldRow]:
    """Every field either has; ``differs`` compares the values, shown masked or not."""
    shown_a, shown_b = (masking.mask_customer(a), masking.mask_customer(b)) if masked else (a, b)
    rows = []
    for field in SHOWN_FIELDS:
        left, right = _shown(getattr(a, field)), _shown(getattr(b, field))
        if left or right:
            rows.append(
                FieldRow(
                    field,
                    labels(f"field.{field}"),
                    _shown(getattr(shown_a, field)),
                    _shown(getattr(shown_b, field)),
                    left != right,
                )
            )
    return rows


CONTACT_COMPARISONS = frozenset({"email", "phone", "address"})


def bars(explanation: dict[str, Any], masked: bool = False) -> list[Bar]:
    running, found = 0.0, []
    for step in explanation.get("steps", []):
        hide = masked and step.get("comparison") in CONTACT_COMPARISONS
        left, right = step.get("left", ""), step.get("right", "")
        if hide:
            left, right = (
                masking.mask_text(left) if left else "",
                masking.mask_text(right) if right else "",
            )
        weight = float(step["weight"]) + float(step.get("tf_adjustment", 0.0))
        running += weight
        sign = "pos" if weight > 0.005 else "neg" if weight < -0.005 else "zero"
        found.append(
            Bar(
                step["title"],
                step["level"],
                left,
                right,
                weight,
                running,
                min(MAX_BAR, round(abs(weight))),
                sign,
            )
        )
    return found


def _customer(session: Any, customer_id: int) -> CustomerRead | None:
    customer = profiles.resolve(session, customer_id)
    return None if customer is None else profile_view.customer_read(customer)


def _masked(request: Request) -> bool:
    principal = principal_of(request)
    return principal is None or not principal.can("customers:read_contact")


@router.get("/reviews", response_class=HTMLResponse, name="review_list_page")
def review_list_page(session: ReadSession, request: Request, after: int = 0) -> Response:
    items = review.list_reviews(session, "open", PAGE, after if after > 0 else None)
    more = items[-1].id if len(items) == PAGE else None
    return render(request, "review_list.html", {"items": items, "more": more})


def _review(request: Request, session: Any, raw_id: str) -> MatchReview | Response:
    loc = locale_of(request)
    review_id = int(raw_id) if raw_id.isascii() and raw_id.isdigit() else 0
    try:
        if not 0 < review_id <= 2**63 - 1:
            raise review.ReviewNotFound(raw_id)
        return review.get(session, review_id)
    except review.ReviewNotFound:
        return _error(request, 404, loc.t("review.not_found"), loc.t("review.not_found_text"))


@router.get("/reviews/explain", response_class=HTMLResponse, name="match_explain_page")
def match_explain_page(
    session: ReadSession, request: Request, a: str = "", b: str = ""
) -> Response:
    """The waterfall of any two customers (`relata dedupe --explain A B` in the browser)."""
    from relata.identity.matching import batch, store
    from relata.identity.matching.scoring import probability, steps_json

    loc = locale_of(request)
    ids = [int(x) if x.isascii() and x.isdigit() and 0 < int(x) <= MAX_ID else 0 for x in (a, b)]
    first = _customer(session, ids[0]) if ids[0] else None
    second = _customer(session, ids[1]) if ids[1] else None
    if first is None or second is None:
        return _error(request, 404, loc.t("error.not_found"), loc.t("explain.two_ids"))
    try:
        weight, steps = batch.explain_pair(request.app.state.db, first.id, second.id)
    except store.UnknownCustomer as exc:
        return _error(request, 404, loc.t("error.not_found"), str(exc))
    except store.NoModel:
        return _error(request, 409, loc.t("explain.no_model"), loc.t("explain.no_model_text"))
    masked = _masked(request)
    context = {
        "a": first,
        "b": second,
        "fields": field_rows(first, second, loc.t, masked),
        "bars": bars(steps_json(steps), masked),
        "total": weight,
        "probability": probability(weight),
    }
    return render(request, "match_explain.html", context)


@router.get("/reviews/{review_id}", response_class=HTMLResponse, name="review_page")
def review_page(session: ReadSession, request: Request, review_id: str) -> Response:
    found = _review(request, session, review_id)
    if isinstance(found, Response):
        return found
    loc = locale_of(request)
    a = _customer(session, found.customer_a_id)
    b = _customer(session, found.customer_b_id)
    if a is None or b is None:
        return _error(request, 404, loc.t("error.not_found"), "")
    masked = _masked(request)
    waterfall = bars(found.explanation, masked)
    context = {
        "r": found,
        "a": a,
        "b": b,
        "fields": field_rows(a, b, loc.t, masked),
        "bars": waterfall,
        "total": waterfall[-1].running if waterfall else 0.0,
        "same": a.id == b.id,
    }
    return render(request, "review.html", context)


def _decide(request: Request, session: Any, review_id: str, accept: bool) -> Response:
    found = _review(request, session, review_id)
    if isinstance(found, Response):
        return found
    loc = locale_of(request)
    try:
        if accept:
            review.accept(session, found.id, request.app.state.settings)
        else:
            review.reject(session, found.id)
    except review.ReviewError as exc:
        return _error(request, 409, loc.t("review.cannot"), str(exc))
    nxt = review.list_reviews(session, "open", 1, found.id)
    target = (
        _path(request, "review_page", review_id=nxt[0].id)
        if nxt
        else _path(request, "review_list_page")
    )
    return RedirectResponse(target, status_code=303)


@router.post("/reviews/{review_id}/accept", name="review_accept")
def review_accept(session: WriteSession, request: Request, review_id: str) -> Response:
    return _decide(request, session, review_id, accept=True)


@router.post("/reviews/{review_id}/reject", name="review_reject")
def review_reject(session: WriteSession, request: Request, review_id: str) -> Response:
    return _decide(request, session, review_id, accept=False)
