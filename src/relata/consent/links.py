"""Double opt-in confirmations and unsubscribe links: the two links a person clicks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from relata.config import Settings
from relata.consent import keys
from relata.consent.errors import CustomerErased, TokenGone, TokenInvalid
from relata.consent.models import ConsentEntry, ConsentToken
from relata.consent.store import active_customer, check_key, record, state_of
from relata.consent.tokens import (
    CONFIRM_TOKEN,
    Unsubscribe,
    new_confirm_token,
    read_unsubscribe,
    same_hash,
    sign_unsubscribe,
    token_hash,
)
from relata.db import utcnow
from relata.profiles import service as profiles

# --- double opt-in -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OptIn:
    token: str  # for the confirmation link; shown once, stored only as a hash
    entry: ConsentEntry
    expires_at: datetime


def request_opt_in(
    session: Session,
    settings: Settings,
    customer_id: int,
    purpose: str,
    channel: str = "email",
    *,
    via: str = "api",
    source: str | None = None,
    text_version: str | None = None,
    evidence: Mapping[str, Any] | None = None,
) -> OptIn:
    """A sign-up: a pending consent and the token that confirms it (``/c/confirm/{token}``)."""
    request = record(
        session,
        settings,
        customer_id,
        purpose,
        channel,
        "request",
        via=via,
        source=source,
        text_version=text_version,
        evidence=evidence,
    )
    token, digest = new_confirm_token()
    expires = request.recorded_at + timedelta(hours=settings.consent_confirm_hours)
    session.add(
        ConsentToken(
            token_hash=digest,
            customer_id=request.customer_id,
            origin_customer_id=request.origin_customer_id,
            entry_id=request.id,
            purpose=purpose,
            channel=channel,
            text_version=request.text_version,
            created_at=request.recorded_at,
            expires_at=expires,
        )
    )
    session.flush()
    return OptIn(token, request, expires)


def confirm(
    session: Session, settings: Settings, token: str, evidence: Mapping[str, Any] | None = None
) -> ConsentEntry:
    """The person clicked the confirmation link: the pending consent becomes a grant, once."""
    if not CONFIRM_TOKEN.fullmatch(token):
        raise TokenInvalid("unknown link")
    digest = token_hash(token)
    found = session.scalar(select(ConsentToken).where(ConsentToken.token_hash == digest))
    if found is None or not same_hash(found.token_hash, digest):
        raise TokenInvalid("unknown link")
    now = utcnow()
    if found.used_at is not None:
        raise TokenGone("used")
    if found.expires_at <= now:
        raise TokenGone("expired")
    # Single use also against a second click at the same moment: one UPDATE wins.
    claimed = session.execute(
        update(ConsentToken)
        .where(ConsentToken.id == found.id, ConsentToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise TokenGone("used")
    request = session.get(ConsentEntry, found.entry_id)
    return record(
        session,
        settings,
        found.customer_id,
        found.purpose,
        found.channel,
        "grant",
        via="link",
        source="double-opt-in",
        text_version=found.text_version,
        evidence={**(evidence or {}), "token_id": found.id, "request_entry_id": found.entry_id},
        origin=found.origin_customer_id,
        # The confirmation speaks for what the sign-up spoke for, no more.
        covers=request.covers if request is not None else None,
    )


# --- unsubscribe links -------------------------------------------------------------------


def unsubscribe_token(
    session: Session, settings: Settings, customer_id: int, purpose: str, channel: str
) -> str:
    """The token for a message's unsubscribe link (``/c/unsubscribe/{token}``).

    Signed, not stored: every message may carry one. On a fresh database the first call
    generates the signing key: call it in a write transaction.
    """
    check_key(settings, purpose, channel)
    customer = active_customer(session, customer_id)
    key = keys.key(session, keys.TOKEN_KEY, settings.token_secret)
    return sign_unsubscribe(key, Unsubscribe(customer.id, purpose, channel, utcnow().date()))


def read_unsubscribe_token(session: Session, settings: Settings, token: str) -> Unsubscribe:
    key = keys.key(session, keys.TOKEN_KEY, settings.token_secret)
    claim = read_unsubscribe(key, token)
    if claim is None or claim.purpose not in settings.consent_purposes:
        raise TokenInvalid("unknown link")
    if claim.issued + timedelta(days=settings.unsubscribe_link_days) < utcnow().date():
        raise TokenGone("expired")
    return claim


def unsubscribe(
    session: Session, settings: Settings, token: str, evidence: Mapping[str, Any] | None = None
) -> tuple[Unsubscribe, ConsentEntry | None]:
    """One click: the purpose on that channel is revoked. Clicking again changes nothing."""
    claim = read_unsubscribe_token(session, settings, token)
    customer = profiles.resolve(session, claim.customer_id)
    if customer is None:
        raise TokenInvalid("unknown link")
    if customer.status == "erased":
        raise CustomerErased(f"customer {claim.customer_id} was erased")
    current = state_of(session, customer.id, claim.purpose, claim.channel, settings)
    if current.status == "revoked":
        return claim, None
    revoked = record(
        session,
        settings,
        customer.id,
        claim.purpose,
        claim.channel,
        "revoke",
        via="link",
        source="unsubscribe-link",
        evidence={**(evidence or {}), "link_issued": claim.issued.isoformat()},
        # The customer the message was sent to: it goes back there if the merge is undone.
        origin=claim.customer_id,
    )
    return claim, revoked
