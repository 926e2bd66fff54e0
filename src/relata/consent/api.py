"""Consent, the permission check, Art. 15 export and Art. 16 rectification over HTTP. Thin."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from relata.api.deps import ReadSession, WriteSession, get_settings, principal_of
from relata.config import Settings
from relata.consent import gdpr, rectify
from relata.consent import service as consent
from relata.consent.errors import CustomerErased, CustomerNotFound
from relata.consent.schemas import (
    Channel,
    ConsentCreate,
    ConsentEntryRead,
    ConsentsRead,
    CustomerUpdate,
    OptInCreate,
    OptInRead,
    PermissionRead,
    Rectification,
    UnsubscribeLinkCreate,
    UnsubscribeLinkRead,
)
from relata.profiles import service as profiles
from relata.profiles.view import MAX_ID

router = APIRouter(prefix="/v1/customers", tags=["consent and GDPR"])
CustomerId = Annotated[int, Path(ge=1, le=MAX_ID, description="customer id")]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def _current(session: Session, customer_id: int, suffix: str = "") -> int | RedirectResponse:
    """The customer's id; a merged-away id is redirected to its survivor (308, like the view)."""
    customer = profiles.resolve(session, customer_id)
    if customer is None:
        raise CustomerNotFound(f"no customer with id {customer_id}")
    if customer.status == "erased":
        raise CustomerErased(f"customer {customer_id} was erased")
    if customer.id != customer_id:
        return RedirectResponse(f"/v1/customers/{customer.id}{suffix}", status_code=308)
    return customer.id


def request_evidence(request: Request, given: dict[str, Any]) -> dict[str, Any]:
    """What the caller says proves the entry, and what relata saw itself, which wins."""
    principal = principal_of(request)
    seen = {
        "ip": request.client.host if request.client else None,
        "user_agent": (request.headers.get("user-agent") or "")[:300] or None,
        "user": principal.name if principal is not None else None,
    }
    return {**given, **{k: v for k, v in seen.items() if v is not None}}


def permission_rows(
    session: Session,
    customer_id: int,
    settings: Settings,
    purpose: str | None = None,
    channel: str | None = None,
) -> list[PermissionRead]:
    return [
        PermissionRead(
            purpose=p,
            channel=c,
            allowed=state.allowed,
            status=state.status,
            since=state.since,
            entry_id=state.entry_id,
        )
        for p, c, state in consent.matrix(session, customer_id, settings, purpose, channel)
    ]


@router.get("/{customer_id}/permissions", response_model=list[PermissionRead])
def get_permissions(
    session: ReadSession,
    settings: SettingsDep,
    customer_id: CustomerId,
    purpose: str | None = Query(None, max_length=64),
    channel: Channel | None = None,
):  # type: ignore[no-untyped-def]
    """May relata use a purpose on a channel for this customer now? ``allowed`` answers."""
    found = _current(session, customer_id, "/permissions")
    if isinstance(found, RedirectResponse):
        return found
    return permission_rows(session, found, settings, purpose, channel)


@router.get("/{customer_id}/consents", response_model=ConsentsRead)
def get_consents(session: ReadSession, settings: SettingsDep, customer_id: CustomerId):  # type: ignore[no-untyped-def]
    """The current state of every purpose × channel, and the ledger it is derived from."""
    found = _current(session, customer_id, "/consents")
    if isinstance(found, RedirectResponse):
        return found
    return ConsentsRead(
        customer_id=found,
        permissions=permission_rows(session, found, settings),
        ledger=[ConsentEntryRead.model_validate(e) for e in consent.entries(session, found)],
    )


@router.post("/{customer_id}/consents", status_code=201, response_model=ConsentEntryRead)
def post_consent(
    session: WriteSession,
    settings: SettingsDep,
    request: Request,
    customer_id: CustomerId,
    body: ConsentCreate,
):  # type: ignore[no-untyped-def]
    """Record a grant or a revocation, with the text agreed to and its evidence."""
    found = _current(session, customer_id, "/consents")
    if isinstance(found, RedirectResponse):
        return found
    evidence = request_evidence(request, body.evidence.model_dump(exclude_none=True))
    entry = consent.record(
        session,
        settings,
        found,
        body.purpose,
        body.channel,
        body.action,
        via="api",
        source=body.source,
        text_version=body.text_version,
        evidence=evidence,
        occurred_at=body.occurred_at,
    )
    return ConsentEntryRead.model_validate(entry)


@router.get("/{customer_id}/consents/{entry_id}", response_model=ConsentEntryRead)
def get_consent_entry(
    session: ReadSession,
    customer_id: CustomerId,
    entry_id: Annotated[int, Path(ge=1, le=MAX_ID)],
):  # type: ignore[no-untyped-def]
    found = _current(session, customer_id, f"/consents/{entry_id}")
    if isinstance(found, RedirectResponse):
        return found
    return ConsentEntryRead.model_validate(consent.entry(session, found, entry_id))


@router.post("/{customer_id}/consents/opt-in", status_code=201, response_model=OptInRead)
def post_opt_in(
    session: WriteSession,
    settings: SettingsDep,
    request: Request,
    customer_id: CustomerId,
    body: OptInCreate,
):  # type: ignore[no-untyped-def]
    """Double opt-in: a pending consent and the token of its confirmation link, to send."""
    found = _current(session, customer_id, "/consents/opt-in")
    if isinstance(found, RedirectResponse):
        return found
    evidence = request_evidence(request, body.evidence.model_dump(exclude_none=True))
    opt_in = consent.request_opt_in(
        session,
        settings,
        found,
        body.purpose,
        body.channel,
        source=body.source,
        text_version=body.text_version,
        evidence=evidence,
    )
    return OptInRead(
        entry=ConsentEntryRead.model_validate(opt_in.entry),
        token=opt_in.token,
        confirm_path=f"/c/confirm/{opt_in.token}",
        expires_at=opt_in.expires_at,
    )


@router.post(
    "/{customer_id}/unsubscribe-links", status_code=201, response_model=UnsubscribeLinkRead
)
def post_unsubscribe_link(
    session: WriteSession,
    settings: SettingsDep,
    customer_id: CustomerId,
    body: UnsubscribeLinkCreate,
):  # type: ignore[no-untyped-def]
    """The unsubscribe link a message to this customer carries."""
    found = _current(session, customer_id, "/unsubscribe-links")
    if isinstance(found, RedirectResponse):
        return found
    token = consent.unsubscribe_token(session, settings, found, body.purpose, body.channel)
    return UnsubscribeLinkRead(token=token, unsubscribe_path=f"/c/unsubscribe/{token}")


@router.get("/{customer_id}/export")
def get_export(session: ReadSession, settings: SettingsDep, customer_id: CustomerId):  # type: ignore[no-untyped-def]
    """Art. 15: everything relata holds about the person, as one JSON document."""
    found = _current(session, customer_id, "/export")
    if isinstance(found, RedirectResponse):
        return found
    return gdpr.export(session, found, settings)


@router.patch("/{customer_id}", response_model=Rectification)
def patch_customer(
    session: WriteSession,
    settings: SettingsDep,
    customer_id: CustomerId,
    body: CustomerUpdate,
):  # type: ignore[no-untyped-def]
    """Art. 16: correct golden fields, e.g. ``{"last_name": "Müller", "reason": "letter"}``."""
    found = _current(session, customer_id)
    if isinstance(found, RedirectResponse):
        return found
    done = rectify.rectify(session, settings, found, body.changes(), reason=body.reason)
    return Rectification(customer_id=done.customer_id, changes=done.changes)
