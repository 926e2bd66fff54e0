"""Consent through the event API, and events of erased people kept out.

``Consent Granted`` / ``Consent Revoked`` track events append to the sender's customer's
ledger (``properties.purpose``, ``properties.channel``, optional ``text_version``,
``form``). Before events are stored, messages that name an erased person (their user id,
anonymous id or traits) and consent events for a purpose not configured are quarantined
with the reason, instead of bringing the person back or failing the whole batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy.orm import Session

from relata.config import Settings
from relata.consent import service
from relata.consent.erasure import erased
from relata.consent.keys import salt_for_lookup
from relata.consent.person import source_key
from relata.events.schemas import CONSENT_EVENTS, Alias, Identify, Track
from relata.events.traits import split_traits
from relata.identity.service import record_identifiers
from relata.ingest.normalise import normalise_record
from relata.ingest.service import Rejected, quarantine

Keyed = tuple[Any, str, object]  # (source, message id, message), as events.service keeps them
ORIGIN = "events"


def _identifiers(src: Any, msg: Any, settings: Settings) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if msg.userId:
        found.append(source_key(src.name, msg.userId))
    if msg.anonymousId:
        found.append(("anonymous_id", msg.anonymousId))
    if isinstance(msg, Alias):
        found += [source_key(src.name, msg.previousId), ("anonymous_id", msg.previousId)]
    if isinstance(msg, Identify) and msg.traits:
        fields, _ = split_traits(msg.traits)
        data = normalise_record(fields, region=settings.default_region, require_identity=False)
        found += record_identifiers(data.data)
    return found


def _reason(msg: object, settings: Settings) -> str | None:
    if isinstance(msg, Track) and msg.event in CONSENT_EVENTS:
        purpose = msg.properties["purpose"]
        if purpose not in settings.consent_purposes:
            known = ", ".join(settings.consent_purposes)
            return f"properties.purpose: unknown purpose {purpose!r}; configured: {known}"
    return None


def screen(session: Session, fresh: Sequence[Keyed], settings: Settings) -> tuple[list[Keyed], int]:
    """The messages to store; the others are quarantined. Returns (kept, quarantined)."""
    refused: dict[int, str] = {}
    for i, (_, _, msg) in enumerate(fresh):
        if reason := _reason(msg, settings):
            refused[i] = reason
    if salt_for_lookup(session, settings.erasure_salt) is not None:  # anyone erased at all?
        keyed = {i: _identifiers(src, msg, settings) for i, (src, _, msg) in enumerate(fresh)}
        hits = erased(session, {k for keys in keyed.values() for k in keys}, settings)
        for i, keys in keyed.items():
            if hits.intersection(keys):
                refused[i] = "erased"
    if not refused:
        return list(fresh), 0
    by_source: dict[int, tuple[Any, list[Rejected]]] = {}
    for i, reason in refused.items():
        src, _, msg = fresh[i]
        raw = orjson.dumps(msg.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS).decode()  # type: ignore[attr-defined]
        by_source.setdefault(src.id, (src, []))[1].append(Rejected(None, "line", raw, reason))
    for src, rejected in by_source.values():
        quarantine(session, src, ORIGIN, rejected)
    return [k for i, k in enumerate(fresh) if i not in refused], len(refused)


def record_consents(
    session: Session, fresh: Sequence[Keyed], customers: Sequence[int], settings: Settings
) -> int:
    """Ledger entries for the consent events just stored; returns how many."""
    done = 0
    for (src, mid, msg), customer_id in zip(fresh, customers, strict=True):
        if not isinstance(msg, Track) or msg.event not in CONSENT_EVENTS:
            continue
        p = msg.properties
        service.record(
            session,
            settings,
            customer_id,
            p["purpose"],
            p["channel"],
            CONSENT_EVENTS[msg.event],
            via="event",
            live=False,  # events/service.ingest re-evaluates every customer after this
            source=src.name,
            source_key=mid,
            text_version=p.get("text_version"),
            evidence={
                "message_id": mid,
                "form": p.get("form"),
                "ip": msg.context.get("ip"),
                "user_agent": msg.context.get("userAgent"),
            },
            occurred_at=msg.timestamp,
        )
        done += 1
    return done
