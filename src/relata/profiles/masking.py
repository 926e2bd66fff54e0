"""Contact data masked for those who may see a customer but not how to reach them. Pure.

Masked: e-mail, phone, street and house number, wherever the view carries them: the
golden record, identifiers, source records (fields and raw attributes) and event
properties (an identify's traits). Name, postcode and city stay: marketing works with them.
"""

from __future__ import annotations

import re
from typing import Any

from relata.profiles.schemas import (
    CustomerRead,
    CustomerSummary,
    CustomerView,
    EventRead,
    IdentifierRead,
    SourceRecordRead,
    Timeline,
)

STARS = "***"
CONTACT_KINDS = frozenset({"email", "phone"})
# Parts of keys (lower-case, separators removed) under which sources and trackers put
# contact data; whole keys for the short ones that would match too much inside a word.
_CONTACT_PARTS = (
    "mail",
    "phone",
    "telefon",
    "mobil",
    "handy",
    "fax",
    "street",
    "strasse",
    "straße",
    "address",
    "adresse",
    "anschrift",
    "housenumber",
    "hausnummer",
    "hausnr",
)
_CONTACT_KEYS = frozenset({"tel", "str", "nr", "houseno"})
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


def mask_email(value: str) -> str:
    """``anna.mueller@example.de`` → ``a***@example.de``: the domain says little about whom."""
    local, at, domain = value.partition("@")
    if not at:
        return mask_text(value)
    return f"{local[:1]}{STARS}@{domain}"


def mask_phone(value: str) -> str:
    """``+4922112345`` → ``+49***45``: the country and the last two digits."""
    digits = value.strip()
    if len(digits) <= 5:
        return STARS
    return f"{digits[:3]}{STARS}{digits[-2:]}"


def mask_text(value: str) -> str:
    """``Hauptstraße`` → ``H***``."""
    return f"{value[:1]}{STARS}" if len(value) > 1 else STARS


def _is_contact_key(key: str) -> bool:
    plain = re.sub(r"[\s_.\-]", "", key.lower())
    return plain in _CONTACT_KEYS or any(part in plain for part in _CONTACT_PARTS)


def _mask_value(key: str, value: Any) -> Any:
    if isinstance(value, dict | list):
        return mask_data(value)
    if value is None or isinstance(value, bool):  # an opt-in flag reaches no one
        return value
    if not isinstance(value, str):
        value = str(value)  # a phone number delivered as a number
    lowered = key.lower()
    if "mail" in lowered or _EMAIL.fullmatch(value.strip()):
        return mask_email(value)
    if any(p in lowered for p in ("phone", "tel", "mobil", "handy", "fax")):
        return mask_phone(value)
    return mask_text(value)


def mask_data(data: Any) -> Any:
    """A JSON-like value with contact data masked, by key and by anything shaped like an e-mail."""
    if isinstance(data, dict):
        return {
            k: _mask_value(k, v) if _is_contact_key(str(k)) else mask_data(v)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [mask_data(v) for v in data]
    if isinstance(data, str) and _EMAIL.fullmatch(data.strip()):
        return mask_email(data)
    return data


def _masked_fields(c: CustomerRead | CustomerSummary) -> dict[str, Any]:
    update: dict[str, Any] = {}
    if c.email:
        update["email"] = mask_email(c.email)
    if c.phone:
        update["phone"] = mask_phone(c.phone)
    if isinstance(c, CustomerRead):
        if c.street:
            update["street"] = mask_text(c.street)
        if c.house_number:
            update["house_number"] = STARS
    return update


def mask_customer(c: CustomerRead) -> CustomerRead:
    return c.model_copy(update=_masked_fields(c))


def mask_summary(c: CustomerSummary) -> CustomerSummary:
    return c.model_copy(update=_masked_fields(c))


def _mask_identifier(i: IdentifierRead) -> IdentifierRead:
    if i.kind == "email":
        return i.model_copy(update={"value": mask_email(i.value)})
    if i.kind == "phone":
        return i.model_copy(update={"value": mask_phone(i.value)})
    return i


def _mask_record(r: SourceRecordRead) -> SourceRecordRead:
    return r.model_copy(update={"data": mask_data(r.data), "attributes": mask_data(r.attributes)})


def _mask_event(e: EventRead) -> EventRead:
    return e.model_copy(
        update={"properties": mask_data(e.properties), "context": mask_data(e.context)}
    )


def mask_timeline(t: Timeline) -> Timeline:
    return t.model_copy(update={"events": [_mask_event(e) for e in t.events]})


def mask_view(v: CustomerView) -> CustomerView:
    return v.model_copy(
        update={
            "customer": mask_customer(v.customer),
            "identifiers": [_mask_identifier(i) for i in v.identifiers],
            "source_records": [_mask_record(r) for r in v.source_records],
            "timeline": mask_timeline(v.timeline),
        }
    )
