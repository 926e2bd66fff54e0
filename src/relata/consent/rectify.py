"""Art. 16 rectification: a person's golden record corrected by hand, and logged.

The correction is written as a source record of its own source, ``rectification``
(trust 100), keyed by the customer, through the ordinary import path: survivorship picks
it like any other record, provenance names it, and it survives the next refresh. A
``Customer Rectified`` event on the timeline says what changed, from what, and why.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from relata.config import Settings
from relata.consent.errors import ConsentError
from relata.consent.store import active_customer
from relata.db import utcnow
from relata.events.timeline import record_system_event
from relata.identity import service as identity
from relata.ingest.models import SourceRecord
from relata.ingest.normalise import CANONICAL_FIELDS, InvalidValue, normalise_record
from relata.ingest.records import RecordInput, upsert_records
from relata.ingest.sources import ensure_source
from relata.segments import membership

SOURCE = "rectification"
TRUST = 100  # a person's correction outranks every source; ties go to the newer record
# Survivorship takes an address whole from one record: a corrected city alone would lose
# to another record's complete address, so the correction carries the whole address.
ADDRESS = ("street", "house_number", "postcode", "city", "country")


class RectificationError(ConsentError):
    """A correction that cannot be applied: unknown field, or a value that is not valid."""


@dataclass(frozen=True, slots=True)
class Rectified:
    customer_id: int  # the customer now holding the record (a correction may merge)
    changes: dict[str, dict[str, Any]]  # field -> {"from": old, "to": new}


def _shown(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _normalised(changes: Mapping[str, str], current: Any, region: str) -> dict[str, str]:
    if not changes:
        raise RectificationError("nothing to correct: give at least one field")
    if unknown := sorted(set(changes) - set(CANONICAL_FIELDS)):
        raise RectificationError(
            f"unknown field(s) {', '.join(unknown)}; known: {', '.join(CANONICAL_FIELDS)}"
        )
    if empty := sorted(f for f, v in changes.items() if not isinstance(v, str) or not v.strip()):
        raise RectificationError(f"a correction needs a value: {', '.join(empty)}")
    if any("\x00" in v for v in changes.values()):
        raise RectificationError("a value must not contain NUL characters")
    values: dict[str, str | None] = dict(changes)
    if any(f in changes for f in ADDRESS):
        for f in ADDRESS:
            if f not in values and getattr(current, f):
                values[f] = getattr(current, f)
    try:
        normal = normalise_record(values, region=region, require_identity=False)
    except InvalidValue as exc:
        raise RectificationError(str(exc)) from None
    if normal.problems:
        raise RectificationError(
            "; ".join(p.replace("; value dropped", "") for p in normal.problems)
        )
    return normal.data


def _record_key(session: Session, source_id: int, customer_id: int) -> str:
    """This customer's correction record, created empty first so that it joins the customer.

    A new record would be linked by its identifiers alone, and a corrected last name
    has none: it would become a customer of its own.
    """
    key = f"customer:{customer_id}"
    found = session.scalar(
        select(SourceRecord.id).where(
            SourceRecord.source_id == source_id, SourceRecord.source_key == key
        )
    )
    if found is None:
        now = utcnow()
        session.add(
            SourceRecord(
                source_id=source_id,
                source_key=key,
                customer_id=customer_id,
                origin_customer_id=customer_id,
                data={},
                attributes={},
                extra_ids=[],
                content_hash="",
                created_at=now,
                updated_at=now,
            )
        )
        session.flush()
    return key


def rectify(
    session: Session,
    settings: Settings,
    customer_id: int,
    changes: Mapping[str, str],
    *,
    reason: str | None = None,
    via: str = "api",
    user: str | None = None,
) -> Rectified:
    customer = active_customer(session, customer_id)
    data = _normalised(changes, customer, settings.default_region)
    before = {f: _shown(getattr(customer, f)) for f in data}
    source = ensure_source(session, SOURCE, "crm", TRUST)
    key = _record_key(session, source.id, customer.id)
    result = upsert_records(session, source, [RecordInput(key, data)], settings, partial=True)
    holder = identity.resolve_id(session, result.customer_of[key])
    session.expire(customer)
    changed = {f: {"from": before[f], "to": v} for f, v in data.items() if before[f] != v}
    record_system_event(
        session,
        holder,
        "Customer Rectified",
        f"rectify:{holder}:{secrets.token_hex(8)}",
        {"changes": changed, "reason": reason, "via": via, "user": user},
    )
    session.flush()
    membership.reevaluate(session, [holder])  # a profile change is live for segments
    return Rectified(holder, changed)
