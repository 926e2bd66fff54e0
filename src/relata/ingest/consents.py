"""Where file intake meets consent: erased people stay out, consent columns reach the ledger."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.orm import Session

from relata.config import Settings
from relata.consent import service as consent
from relata.db import utcnow
from relata.ingest.mapping import Mapping, consent_value
from relata.ingest.models import Source
from relata.ingest.records import BatchResult, RecordInput

ERASED = "erased"


def as_delivered(mapping: Mapping, record: RecordInput) -> str:
    # Under the file's own headers, so that a retry maps it like the file's other rows.
    row: dict[str, Any] = {
        column: record.data[name] for name, column in mapping.fields.items() if name in record.data
    }
    row.update(record.attributes)
    return orjson.dumps(row, option=orjson.OPT_SORT_KEYS).decode()


def screen_erased(
    session: Session, source: Source, records: list[RecordInput], settings: Settings
) -> tuple[list[RecordInput], list[RecordInput]]:
    """Records to store, and those of erased people (for the quarantine).

    Erasure keeps a salted hash of the person's identifiers and record keys; a file
    delivering them again must not bring the person back. One indexed lookup a batch,
    one primary-key read when nobody was ever erased.
    """
    keyed = [consent.erasure_keys(source.name, r.source_key, r.data, r.extra_ids) for r in records]
    hits = consent.erased(session, {k for keys in keyed for k in keys}, settings)
    if not hits:
        return records, []
    kept, refused = [], []
    for record, keys in zip(records, keyed, strict=True):
        if hits.intersection(keys):
            refused.append(record)
        else:
            kept.append(record)
    return kept, refused


def record_consents(
    session: Session,
    source: Source,
    mapping: Mapping,
    records: list[RecordInput],
    result: BatchResult,
    settings: Settings,
) -> None:
    """Ledger entries for what the batch's consent columns say (only what changed)."""
    if not mapping.consents:
        return
    now = utcnow()
    rows = []
    for record in records:
        said = {}
        for name, column in mapping.consents.items():
            # The reader refused rows with unreadable consent columns: this cannot raise.
            value = consent_value(str(record.attributes.get(column, "")))
            if value is not None:
                said[name] = value
        customer_id = result.customer_of.get(record.source_key)
        if said and customer_id is not None:
            rows.append(
                consent.ImportedConsent(customer_id, source.name, record.source_key, said, now)
            )
    consent.record_from_import(session, rows, settings)
