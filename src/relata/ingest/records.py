"""Storing a batch of source records: diff, link, create customers, write.

One call is one step of one transaction: a batch either lands whole or not at
all, so an import that dies midway can simply be run again.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from relata.config import Settings
from relata.db import allocate_ids, bulk_insert, lock_keys, utcnow
from relata.identity import service as identity
from relata.identity.linking import LinkItem, Person, Plan
from relata.identity.models import Identifier
from relata.ingest.models import Source, SourceRecord
from relata.profiles import service as profiles
from relata.profiles.survivorship import Candidate, golden

CHUNK = 500
STALE_RETRIES = 5
_RECORD_COLUMNS = [
    "id",
    "source_id",
    "source_key",
    "customer_id",
    "origin_customer_id",
    "data",
    "attributes",
    "extra_ids",
    "content_hash",
    "created_at",
    "updated_at",
]


@dataclass(frozen=True, slots=True)
class RecordInput:
    source_key: str
    data: dict[str, Any]  # canonical fields, normalised
    attributes: dict[str, Any] = field(default_factory=dict)
    extra_ids: tuple[tuple[str, str], ...] = ()
    # Worked out ahead, in the process that normalised the row: its fingerprint and
    # identifiers. Empty when the caller did not.
    digest: str = ""
    identifiers: tuple[tuple[str, str], ...] = ()

    def with_digest(self) -> RecordInput:
        extra = [list(k) for k in self.extra_ids]
        return RecordInput(
            self.source_key,
            self.data,
            self.attributes,
            self.extra_ids,
            _digest(self.data, self.attributes, extra),
            tuple(identity.record_identifiers(self.data, extra)),
        )

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Batches cross from the worker by pickle; the dataclass default is 4× slower.
        return RecordInput, (
            self.source_key,
            self.data,
            self.attributes,
            self.extra_ids,
            self.digest,
            self.identifiers,
        )


@dataclass(slots=True)
class BatchResult:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    merged: int = 0
    customer_of: dict[str, int] = field(default_factory=dict)  # source_key -> customer id
    # Customers this batch created (linked to no one by identifiers), and every active
    # customer whose golden record it changed: what matching and segments look at next.
    born: list[int] = field(default_factory=list)
    touched: set[int] = field(default_factory=set)


@dataclass(slots=True)
class _Row:
    input: RecordInput
    data: dict[str, Any]
    attributes: dict[str, Any]
    extra_ids: list[list[str]]
    digest: str
    existing: dict[str, Any] | None
    identifiers: list[tuple[str, str]]


def _digest(data: dict[str, Any], attributes: dict[str, Any], extra: list[list[str]]) -> str:
    blob = orjson.dumps([data, attributes, extra], option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(blob, digest_size=16).hexdigest()


def _existing(
    session: Session, source_id: int, keys: list[str], partial: bool
) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    t = SourceRecord.__table__
    columns = [t.c.id, t.c.source_key, t.c.customer_id, t.c.origin_customer_id, t.c.content_hash]
    if partial:  # only a partial update needs what the record says already
        columns += [t.c.data, t.c.attributes, t.c.extra_ids]
    for i in range(0, len(keys), CHUNK):
        rows = session.execute(
            select(*columns).where(
                t.c.source_id == source_id, t.c.source_key.in_(keys[i : i + CHUNK])
            )
        )
        for row in rows:
            found[row.source_key] = row._asdict()
    return found


def _prepare(
    inputs: list[RecordInput], existing: dict[str, dict[str, Any]], partial: bool
) -> list[_Row]:
    rows = []
    for rec in inputs:
        old = existing.get(rec.source_key)
        if old is not None and not partial and rec.digest == old["content_hash"]:
            # Unchanged: nothing more to work out (most of a re-import).
            rows.append(_Row(rec, rec.data, rec.attributes, [], rec.digest, old, []))
            continue
        data, attributes = rec.data, rec.attributes
        extra = [list(k) for k in rec.extra_ids]
        digest = rec.digest
        if partial and old is not None:
            # An identify call says what changed, not everything: keep the rest.
            data = {**old["data"], **data}
            attributes = {**old["attributes"], **attributes}
            extra = [list(k) for k in dict.fromkeys(map(tuple, old["extra_ids"] + extra))]
            digest = ""
        if digest:
            ids = list(rec.identifiers) or identity.record_identifiers(data, extra)
        else:
            digest = _digest(data, attributes, extra)
            ids = identity.record_identifiers(data, extra)
        rows.append(_Row(rec, data, attributes, extra, digest, old, ids))
    return rows


def _dedupe(inputs: list[RecordInput], partial: bool) -> list[RecordInput]:
    """One input per key, as if the batch had been delivered one record at a time."""
    last: dict[str, RecordInput] = {}
    for rec in inputs:
        before = last.pop(rec.source_key, None)
        if partial and before is not None:
            rec = RecordInput(
                rec.source_key,
                {**before.data, **rec.data},
                {**before.attributes, **rec.attributes},
                tuple(dict.fromkeys(before.extra_ids + rec.extra_ids)),
            )
        last[rec.source_key] = rec
    return list(last.values())


def _diff_and_plan(
    session: Session,
    source: Source,
    inputs: list[RecordInput],
    settings: Settings,
    partial: bool,
    result: BatchResult,
) -> tuple[list[_Row], Plan]:
    """What changed, and which customer each changed record joins."""
    existing = _existing(session, source.id, [r.source_key for r in inputs], partial)
    changed = []
    for row in _prepare(inputs, existing, partial):
        if row.existing is not None and row.existing["content_hash"] == row.digest:
            result.unchanged += 1
            result.customer_of[row.input.source_key] = row.existing["customer_id"]
        else:
            changed.append(row)
    if not changed:
        return changed, Plan()
    items = [
        LinkItem(
            current=row.existing["customer_id"] if row.existing else None,
            identifiers=row.identifiers,
            person=Person(
                row.data.get("first_name"), row.data.get("last_name"), row.data.get("birth_date")
            ),
        )
        for row in changed
    ]
    return changed, identity.plan(session, items, settings)


def _root(merged_into: dict[int, int], cid: int) -> int:
    while cid in merged_into:
        cid = merged_into[cid]
    return cid


def upsert_records(
    session: Session,
    source: Source,
    inputs: list[RecordInput],
    settings: Settings,
    *,
    partial: bool = False,
) -> BatchResult:
    """Store one batch of a source's records, linked to their customers.

    ``partial``: each input updates only the fields it has (an ``identify`` call),
    instead of replacing the record (a file row).
    """
    result = BatchResult()
    inputs = _dedupe(inputs, partial)
    strong = set(settings.strong_identifiers)
    lock_keys(
        session,
        chain(
            (f"rec:{source.id}:{r.source_key}" for r in inputs),
            identity.lock_names(
                k
                for r in inputs
                for k in identity.record_identifiers(r.data, r.extra_ids)
                if k[0] in strong
            ),
        ),
    )
    for attempt in range(STALE_RETRIES):
        try:
            changed, plan = _diff_and_plan(session, source, inputs, settings, partial, result)
            break
        except identity.StaleCustomers:
            if attempt == STALE_RETRIES - 1:
                raise
            result = BatchResult()
    if not changed:
        return result
    now = utcnow()

    # New customers are born with their golden record: all their records are here.
    members: dict[int, list[_Row]] = defaultdict(list)
    for ref, row in zip(plan.assign, changed, strict=True):
        if ref < 0:
            members[ref].append(row)
    goldens = [
        golden(
            [
                Candidate(source.name, r.input.source_key, source.trust, now, r.data)
                for r in members[ref]
            ],
            settings.survivorship,
        )
        for ref in plan.new
    ]
    ids = dict(zip(plan.new, profiles.create_customers(session, goldens), strict=True))

    touched: set[int] = set()
    merged_into: dict[int, int] = {}
    for survivor, merged, why in plan.merges:
        identity.merge(session, survivor, merged, f"shared identifier {why}")
        merged_into[merged] = survivor
        touched.add(survivor)
        result.merged += 1

    customer_ids = [ids.get(ref, ref) for ref in plan.assign]
    born = set(ids.values())
    touched.update(cid for cid in customer_ids if cid not in born)
    touched.update(row.existing["customer_id"] for row in changed if row.existing)
    _write(session, source, changed, customer_ids, now, result)
    refreshed = {_root(merged_into, c) for c in touched}
    profiles.refresh(session, refreshed, settings.survivorship)
    result.born = [cid for cid in ids.values() if cid not in merged_into]
    result.touched = refreshed | set(result.born)
    return result


def _write(
    session: Session,
    source: Source,
    rows: list[_Row],
    customer_ids: list[int],
    now: Any,
    result: BatchResult,
) -> None:
    t = SourceRecord.__table__
    fresh = [
        (row, cid) for row, cid in zip(rows, customer_ids, strict=True) if row.existing is None
    ]
    stale = [(row, cid) for row, cid in zip(rows, customer_ids, strict=True) if row.existing]
    # (record id, customer id, origin customer id, row)
    record_ids: list[tuple[int, int, int, _Row]] = []
    if fresh:
        ids = allocate_ids(session, t, len(fresh))
        bulk_insert(
            session,
            t,
            _RECORD_COLUMNS,
            [
                (
                    rid,
                    source.id,
                    row.input.source_key,
                    cid,
                    cid,
                    row.data,
                    row.attributes,
                    row.extra_ids,
                    row.digest,
                    now,
                    now,
                )
                for rid, (row, cid) in zip(ids, fresh, strict=True)
            ],
        )
        record_ids.extend((rid, cid, cid, row) for rid, (row, cid) in zip(ids, fresh, strict=True))
    for row, cid in stale:
        assert row.existing is not None
        session.execute(
            t.update()
            .where(t.c.id == row.existing["id"])
            .values(
                data=row.data,
                attributes=row.attributes,
                extra_ids=row.extra_ids,
                content_hash=row.digest,
                updated_at=now,
            )
        )
        record_ids.append((row.existing["id"], cid, row.existing["origin_customer_id"], row))
    if stale:
        # By customer first (indexed), then record: merges above moved them to ``cid``.
        stale_ids = [(row.existing["id"], cid) for row, cid in stale if row.existing]
        for i in range(0, len(stale_ids), CHUNK):
            chunk = stale_ids[i : i + CHUNK]
            session.execute(
                delete(Identifier).where(
                    Identifier.customer_id.in_({cid for _, cid in chunk}),
                    Identifier.source_record_id.in_([rid for rid, _ in chunk]),
                )
            )
    identity.write_identifiers(
        session,
        [
            (kind, value, cid, origin, rid, now)
            for rid, cid, origin, row in record_ids
            for kind, value in row.identifiers
        ],
    )
    result.new += len(fresh)
    result.updated += len(stale)
    for _, cid, _, row in record_ids:
        result.customer_of[row.input.source_key] = cid
