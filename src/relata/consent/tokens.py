"""Confirmation and unsubscribe tokens. Pure: no I/O; keys come from ``consent.keys``.

- A **confirmation** (double opt-in) token is 256 random bits; only its SHA-256 is stored,
  so a copy of the database confirms nothing. It is single use and expires.
- An **unsubscribe** token is signed, not stored: a message of any campaign can carry one,
  and it keeps working for every message sent later without a row per message. It names
  the customer, purpose and channel and the day it was issued, with an HMAC-SHA256 over
  them; a changed byte is a wrong token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import date

CONFIRM_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
UNSUBSCRIBE_TOKEN = re.compile(r"[A-Za-z0-9_-]{8,200}\.[A-Za-z0-9_-]{22}")
_PAYLOAD = re.compile(r"u1:([1-9][0-9]{0,18}):([a-z][a-z0-9_]{0,63}):([a-z]{1,16}):([0-9]{1,7})")
_EPOCH = date(2020, 1, 1)


def new_confirm_token() -> tuple[str, str]:
    """A fresh token for the link, and the hash to store."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    customer_id: int
    purpose: str
    channel: str
    issued: date


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: bytes) -> bytes:
    # 128 bits of the HMAC: unforgeable, and the link stays short.
    return hmac.new(key, b"unsubscribe\0" + payload, hashlib.sha256).digest()[:16]


def sign_unsubscribe(key: bytes, claim: Unsubscribe) -> str:
    days = (claim.issued - _EPOCH).days
    payload = f"u1:{claim.customer_id}:{claim.purpose}:{claim.channel}:{days}".encode()
    return f"{_b64(payload)}.{_b64(_mac(key, payload))}"


def read_unsubscribe(key: bytes, token: str) -> Unsubscribe | None:
    """The claim of a genuine token; None for anything else (malformed, forged, altered)."""
    if not UNSUBSCRIBE_TOKEN.fullmatch(token):
        return None
    body, tag = token.split(".")
    try:
        payload = _unb64(body)
        given = _unb64(tag)
    except ValueError:
        return None
    if _b64(payload) != body or _b64(given) != tag:
        return None  # base64 has spare bits: one token, one spelling
    if not hmac.compare_digest(_mac(key, payload), given):
        return None
    match = _PAYLOAD.fullmatch(payload.decode("ascii", errors="replace"))
    if match is None:  # signed by us, so only a future format: refuse rather than guess
        return None
    customer, purpose, channel, days = match.groups()
    return Unsubscribe(
        int(customer), purpose, channel, date.fromordinal(_EPOCH.toordinal() + int(days))
    )
