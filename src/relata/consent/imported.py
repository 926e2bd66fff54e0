"""Consent columns of imported files, as ledger entries."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from relata.config import Settings
from relata.consent import cache
from relata.consent.models import ConsentEntry
from relata.consent.store import CHUNK, check_key, when
from relata.db import utcnow
from relata.identity import service as identity
from relata.ingest.models import Source, SourceRecord

# --- consents from imports ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportedConsent:
    """What one imported row says about consent, after its record was written."""

    customer_id: int
    source: str  # the source's name
    source_key: str
    # "purpose:channel" -> (granted?, the day it was given or withdrawn, if the file says)
    consents: Mapping[str, tuple[bool, date | None]]
    at: datetime  # when the import saw it: the time of a statement without a date


def _keys_of(rows: list[ImportedConsent], settings: Settings) -> None:
    for row in rows:
        for name in row.consents:
            purpose, _, channel = name.partition(":")
            check_key(settings, purpose, channel)


def _record_origins(session: Session, source: str, keys_: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for i in range(0, len(keys_), CHUNK):
        found.update(
            session.execute(
                select(SourceRecord.source_key, SourceRecord.origin_customer_id)
                .join(Source, Source.id == SourceRecord.source_id)
                .where(Source.name == source, SourceRecord.source_key.in_(keys_[i : i + CHUNK]))
            ).all()
        )
    return found


def _last_said(
    session: Session, source: str, customers: set[int]
) -> dict[tuple[str, str, str], str]:
    """What each record of ``source`` last said per purpose × channel: its latest action."""
    said: dict[tuple[str, str, str], tuple[int, str]] = {}
    ordered = sorted(customers)
    for i in range(0, len(ordered), CHUNK):
        rows = session.execute(
            select(
                ConsentEntry.source_key,
                ConsentEntry.purpose,
                ConsentEntry.channel,
                ConsentEntry.action,
                ConsentEntry.id,
            ).where(
                ConsentEntry.customer_id.in_(ordered[i : i + CHUNK]),
                ConsentEntry.via == "import",
                ConsentEntry.source == source,
            )
        )
        for key, purpose, channel, action, entry_id in rows:
            k = (key, purpose, channel)
            if k not in said or said[k][0] < entry_id:
                said[k] = (entry_id, action)
    return {k: action for k, (_, action) in said.items()}


def record_from_import(
    session: Session, rows: Iterable[ImportedConsent], settings: Settings
) -> int:
    """Ledger entries for imported consent columns; returns how many were appended.

    A file is a snapshot of what a source believes, delivered again and again. An entry
    is appended only when a record's statement *changes* (or is new): importing the same
    file twice adds nothing, and a file that still says "yes" after the person
    unsubscribed here does not grant again. Each entry covers only its record's side,
    so after a merge it cannot outweigh the other side's revocation.
    """
    todo = [r for r in rows if r.consents]
    if not todo:
        return 0
    _keys_of(todo, settings)
    roots = identity.resolve_ids(session, {r.customer_id for r in todo})
    now = utcnow()
    inserts: list[dict[str, Any]] = []
    for source in sorted({r.source for r in todo}):
        mine = [r for r in todo if r.source == source]
        origins = _record_origins(session, source, sorted({r.source_key for r in mine}))
        said = _last_said(session, source, {roots[r.customer_id] for r in mine})
        for r in mine:
            origin = origins.get(r.source_key, r.customer_id)
            for name, (granted, on) in sorted(r.consents.items()):
                purpose, _, channel = name.partition(":")
                action = "grant" if granted else "revoke"
                if said.get((r.source_key, purpose, channel)) == action:
                    continue
                said[(r.source_key, purpose, channel)] = action
                at = datetime.combine(on, time(), UTC) if on else r.at
                inserts.append(
                    {
                        "customer_id": roots[r.customer_id],
                        "origin_customer_id": origin,
                        "purpose": purpose,
                        "channel": channel,
                        "action": action,
                        "occurred_at": when(at, now),
                        "recorded_at": now,
                        "via": "import",
                        "source": source,
                        "source_key": r.source_key,
                        "text_version": None,
                        "evidence": {"import": source, "source_key": r.source_key},
                        "covers": [origin],
                    }
                )
    if inserts:
        session.execute(insert(ConsentEntry), inserts)
        cache.invalidate(session, {row["customer_id"] for row in inserts})
    return len(inserts)
