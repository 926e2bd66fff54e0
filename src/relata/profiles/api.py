"""The 360° view and customer search."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from relata.api.deps import ContactVisible, ReadSession
from relata.profiles import masking, service, view
from relata.profiles.schemas import CustomerSummary, CustomerView, Holdings, Timeline
from relata.profiles.view import MAX_ID

router = APIRouter(prefix="/v1/customers", tags=["customers"])
CustomerId = Annotated[int, Path(ge=1, le=MAX_ID, description="customer id")]


def _active_or_redirect(
    session: Session, customer_id: int, suffix: str = ""
) -> int | RedirectResponse:
    customer = service.resolve(session, customer_id)
    if customer is None:
        raise HTTPException(404, f"no customer with id {customer_id}")
    if customer.status == "erased":
        # Art. 17: the person was here and is gone for good, which is not "never existed".
        raise HTTPException(410, f"customer {customer_id} was erased")
    if customer.id != customer_id:
        # Merged away: the surviving customer answers for it.
        return RedirectResponse(f"/v1/customers/{customer.id}{suffix}", status_code=308)
    return customer.id


@router.get("", response_model=list[CustomerSummary])
def search_customers(
    session: ReadSession,
    contact: ContactVisible,
    q: str = Query(..., min_length=1, max_length=200, description="name, e-mail, phone or number"),
    limit: int = Query(20, ge=1, le=100),
) -> list[CustomerSummary]:
    found = view.search(session, q, limit)
    return found if contact else [masking.mask_summary(c) for c in found]


@router.get("/{customer_id}", response_model=CustomerView)
def get_customer(
    session: ReadSession,
    contact: ContactVisible,
    customer_id: CustomerId,
    page_size: int = Query(50, ge=1, le=500),
    before: str | None = Query(None, description="cursor from timeline.next_cursor"),
):  # type: ignore[no-untyped-def]
    found = _active_or_redirect(session, customer_id)
    if isinstance(found, RedirectResponse):
        return found
    customer = service.resolve(session, found)
    assert customer is not None
    data = view.view(session, customer, page_size, before)
    return data if contact else masking.mask_view(data)


@router.get("/{customer_id}/timeline", response_model=Timeline)
def get_timeline(
    session: ReadSession,
    contact: ContactVisible,
    customer_id: CustomerId,
    page_size: int = Query(50, ge=1, le=500),
    before: str | None = None,
):  # type: ignore[no-untyped-def]
    found = _active_or_redirect(session, customer_id, "/timeline")
    if isinstance(found, RedirectResponse):
        return found
    page = view.timeline_page(session, found, page_size, before)
    return page if contact else masking.mask_timeline(page)


@router.get("/{customer_id}/holdings", response_model=Holdings)
def get_holdings(
    session: ReadSession,
    customer_id: CustomerId,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
):  # type: ignore[no-untyped-def]
    found = _active_or_redirect(session, customer_id, "/holdings")
    if isinstance(found, RedirectResponse):
        return found
    return view.holdings_list(session, found, limit, offset)
