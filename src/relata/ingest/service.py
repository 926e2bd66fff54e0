"""File intake and the quarantine: from a CSV or JSONL file to stored records."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any

import orjson
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from relata.config import Settings
from relata.consent import service as consent
from relata.consent.errors import ConsentError
from relata.db import Database, insert_ignoring_duplicates, utcnow
from relata.ingest.consents import ERASED, as_delivered, record_consents, screen_erased
from relata.ingest.mapping import (
    Mapping,
    MappingError,
    apply_mapping,
    guess_mapping,
    load_mapping,
    mapping_problems,
)
from relata.ingest.models import QuarantineEntry, Source
from relata.ingest.normalise import InvalidValue, normalise_record
from relata.ingest.readers import RawRow, ReadError, headers, read_file
from relata.ingest.records import BatchResult, RecordInput, upsert_records
from relata.ingest.sources import SourceError, require_source
from relata.segments import service as segments

Progress = Callable[[int], None]  # called with the number of rows just handled
PARALLEL_FROM_BYTES = 4 << 20


class FileImportError(ValueError):
    """The whole file cannot be imported (unreadable, or no usable mapping)."""


@dataclass(slots=True)
class ImportSummary:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    merged: int = 0

    def add(self, batch: BatchResult) -> None:
        self.new += batch.new
        self.updated += batch.updated
        self.unchanged += batch.unchanged
        self.merged += batch.merged

    def as_dict(self) -> dict[str, Any]:
        return {
            "new": self.new,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "quarantined": self.quarantined,
            "merged": self.merged,
        }


@dataclass(frozen=True, slots=True)
class Rejected:
    line_no: int | None
    raw_kind: str  # "row" or "line"
    raw: str
    reason: str


def to_record(mapping: Mapping, values: dict[str, str], region: str) -> RecordInput:
    """Map and normalise one row; raises MappingError or InvalidValue for quarantine."""
    mapped = apply_mapping(mapping, values)
    normal = normalise_record(mapped.fields, region=region)
    attributes: dict[str, Any] = dict(mapped.attributes)
    for name, raw in normal.dropped.items():
        attributes[f"_invalid_{name}"] = raw
    return RecordInput(mapped.source_key, normal.data, attributes).with_digest()


def _convert(mapping: Mapping, row: RawRow, region: str) -> RecordInput | Rejected:
    if row.values is None:
        text = (row.text or "").replace("\x00", "")
        return Rejected(row.line_no, "line", text, row.error or "unparseable line")
    values = row.values
    if any("\x00" in v for v in values.values()):
        # Neither database stores NUL in text; it is never meaningful in a name or address.
        values = {k: v.replace("\x00", "") for k, v in values.items()}
    try:
        return to_record(mapping, values, region)
    except (MappingError, InvalidValue) as exc:
        raw = orjson.dumps(values, option=orjson.OPT_SORT_KEYS).decode()
        return Rejected(row.line_no, "row", raw, str(exc))


def quarantine(session: Session, source: Source, origin: str, rejected: list[Rejected]) -> None:
    if not rejected:
        return
    now = utcnow()
    session.execute(
        insert_ignoring_duplicates(session, QuarantineEntry.__table__),
        [
            {
                "source_id": source.id,
                "origin": origin[-500:],
                "line_no": r.line_no,
                "raw_kind": r.raw_kind,
                "raw": r.raw,
                "raw_hash": hashlib.blake2b(r.raw.encode(), digest_size=16).hexdigest(),
                "reason": r.reason,
                "status": "open",
                "created_at": now,
            }
            for r in rejected
        ],
    )


def choose_mapping(
    source: Source, file_headers: list[str], mapping_file: Path | None, settings: Settings
) -> Mapping:
    """An explicit mapping file wins, then the source's stored mapping, then a guess."""
    if mapping_file is not None:
        mapping = load_mapping(mapping_file)
    elif source.mapping and not mapping_problems(Mapping.from_json(source.mapping), file_headers):
        mapping = Mapping.from_json(source.mapping)
    else:
        mapping = guess_mapping(file_headers)
    problems = mapping_problems(mapping, file_headers)
    for name in mapping.consents:
        try:
            consent.check_key(settings, *name.split(":", 1))
        except ConsentError as exc:
            problems.append(f"consent column '{mapping.consents[name]}': {exc}")
    if problems:
        raise FileImportError("; ".join(problems))
    if not mapping.fields:
        raise FileImportError(
            "no column of the file is a known customer field; give a mapping with --mapping"
        )
    return mapping


def _batches(rows: Iterator[RawRow], size: int) -> Iterator[list[RawRow]]:
    batch: list[RawRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


Converted = tuple[int, list[RecordInput], list[Rejected]]  # rows read, accepted, refused


def convert_batch(mapping: Mapping, batch: list[RawRow], region: str) -> Converted:
    converted = [_convert(mapping, row, region) for row in batch]
    records = [c for c in converted if isinstance(c, RecordInput)]
    return len(batch), records, [c for c in converted if isinstance(c, Rejected)]


def _produce(path: Path, mapping: dict[str, Any], settings: Settings, out: Any) -> None:
    """In a worker process: read and normalise the file, batch by batch, into ``out``."""
    try:
        for batch in _batches(read_file(path), settings.import_batch_size):
            out.put(convert_batch(Mapping.from_json(mapping), batch, settings.default_region))
        out.put(None)
    except ReadError as exc:
        out.put(exc)


def _next(queue: Any, worker: Any) -> Any:
    while True:
        try:
            return queue.get(timeout=1)
        except Empty:
            if not worker.is_alive():
                raise FileImportError("the process reading the file stopped unexpectedly") from None


def _converted(path: Path, mapping: Mapping, settings: Settings) -> Iterator[Converted]:
    """Batches of converted rows. A large file is read and normalised by a worker process
    while this one writes the batches before: normalising is a third of an import."""
    if (os.cpu_count() or 1) < 2 or path.stat().st_size < PARALLEL_FROM_BYTES:
        for batch in _batches(read_file(path), settings.import_batch_size):
            yield convert_batch(mapping, batch, settings.default_region)
        return
    # fork: the worker starts in milliseconds; it never touches the inherited database
    # connections and leaves through os._exit, so it cannot close them under us.
    context = multiprocessing.get_context("fork")
    queue = context.Queue(maxsize=4)  # bounded: a fast reader cannot fill the memory
    worker = context.Process(
        target=_produce, args=(path, mapping.to_json(), settings, queue), daemon=True
    )
    worker.start()
    try:
        while (item := _next(queue, worker)) is not None:
            if isinstance(item, ReadError):
                raise item
            yield item
    finally:
        worker.terminate()
        worker.join(5)


def refresh_statistics(db: Database, extra: str = "") -> None:
    """Let PostgreSQL's planner see how large the tables have grown.

    A bulk load grows ``source_records`` and ``identifiers`` from nothing faster than
    autovacuum analyses them; the driver's prepared statements then keep a plan made
    for an empty table (a sequential scan) for the whole import.
    """
    if db.is_sqlite:
        return
    with db.engine.connect() as conn:
        conn.execute(text(f"ANALYZE source_records, identifiers, customers{extra}"))
        conn.commit()


def import_file(
    db: Database,
    path: Path,
    source_name: str,
    settings: Settings,
    mapping_file: Path | None = None,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import a CSV or JSONL file of people into ``source_name``; one transaction a batch."""
    if not path.is_file():
        raise FileImportError(f"no such file: {path}")
    try:
        file_headers = headers(path)
    except ReadError as exc:
        raise FileImportError(f"{path.name}: {exc}") from exc
    with db.session() as session:
        source = require_source(session, source_name)
        mapping = choose_mapping(source, file_headers, mapping_file, settings)
        if mapping_file is not None or source.mapping is None:
            # A guess for one odd file must not replace the mapping someone wrote.
            source.mapping = mapping.to_json()
    summary = ImportSummary()
    try:
        for number, (count, records, rejected) in enumerate(
            _converted(path, mapping, settings), start=1
        ):
            if number & (number - 1) == 0:  # batches 1, 2, 4, 8, …
                refresh_statistics(db)
            with db.session() as session:
                src = session.get(Source, source.id)
                assert src is not None
                records, erased = screen_erased(session, src, records, settings)
                rejected += [
                    Rejected(None, "row", as_delivered(mapping, r), ERASED) for r in erased
                ]
                result = upsert_records(session, src, records, settings)
                record_consents(session, src, mapping, records, result, settings)
                segments.reevaluate(session, result.touched)  # a profile change is live too
                summary.add(result)
                quarantine(session, src, str(path), rejected)
            summary.quarantined += len(rejected)
            if progress:
                progress(count)
    except ReadError as exc:
        raise FileImportError(f"{path.name}: {exc}") from exc
    return summary


def list_quarantine(
    session: Session, source_name: str | None = None, status: str = "open", limit: int = 100
) -> list[tuple[QuarantineEntry, str]]:
    stmt = (
        select(QuarantineEntry, Source.name)
        .join(Source, Source.id == QuarantineEntry.source_id)
        .order_by(QuarantineEntry.id)
        .limit(limit)
    )
    if status != "all":
        stmt = stmt.where(QuarantineEntry.status == status)
    if source_name is not None:
        stmt = stmt.where(Source.id == require_source(session, source_name).id)
    return [(entry, name) for entry, name in session.execute(stmt).all()]


@dataclass(slots=True)
class RetrySummary:
    resolved: int = 0
    still_open: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def retry_quarantine(
    db: Database, settings: Settings, source_name: str | None = None
) -> RetrySummary:
    """Run open rows again through their source's current mapping; keep what still fails.

    One transaction a batch of rows, like an import: a long retry never holds the
    write lock for all of it, and what was fixed stays fixed if it stops midway.
    """
    summary = RetrySummary()
    with db.session(write=False) as session:
        if source_name:
            source_ids = [require_source(session, source_name).id]
        else:
            open_ids = select(QuarantineEntry.source_id).where(QuarantineEntry.status == "open")
            source_ids = list(session.scalars(select(Source.id).where(Source.id.in_(open_ids))))
    for source_id in source_ids:
        after = 0
        while True:
            with db.session() as session:
                source = session.get(Source, source_id)
                assert source is not None
                entries = list(
                    session.scalars(
                        select(QuarantineEntry)
                        .where(
                            QuarantineEntry.source_id == source_id,
                            QuarantineEntry.status == "open",
                            QuarantineEntry.id > after,
                        )
                        .order_by(QuarantineEntry.id)
                        .limit(settings.import_batch_size)
                    )
                )
                if not entries:
                    break
                _retry_source(session, settings, source, entries, summary)
                after = entries[-1].id
    return summary


def _retry_source(
    session: Session,
    settings: Settings,
    source: Source,
    entries: list[QuarantineEntry],
    summary: RetrySummary,
) -> None:
    converted: list[tuple[QuarantineEntry, RecordInput, Mapping]] = []

    def still_open(entry: QuarantineEntry, reason: str) -> None:
        entry.reason = reason
        summary.still_open += 1
        summary.reasons[reason] = summary.reasons.get(reason, 0) + 1

    for entry in entries:
        if entry.raw_kind != "row":
            still_open(
                entry, "an unparseable line cannot be retried; correct the file and import it again"
            )
            continue
        values = orjson.loads(entry.raw)
        mapping = (
            Mapping.from_json(source.mapping) if source.mapping else guess_mapping(list(values))
        )
        try:
            converted.append((entry, to_record(mapping, values, settings.default_region), mapping))
        except (MappingError, InvalidValue) as exc:
            still_open(entry, str(exc))
    if not converted:
        return
    _, erased = screen_erased(session, source, [r for _, r, _ in converted], settings)
    refused = {id(r) for r in erased}
    for entry, record, _ in converted:
        if id(record) in refused:
            still_open(entry, ERASED)
    good = [c for c in converted if id(c[1]) not in refused]
    if not good:
        return
    result = upsert_records(session, source, [r for _, r, _ in good], settings)
    by_mapping: dict[bytes, tuple[Mapping, list[RecordInput]]] = {}
    for _, record, mapping in good:
        key = orjson.dumps(mapping.to_json(), option=orjson.OPT_SORT_KEYS)
        by_mapping.setdefault(key, (mapping, []))[1].append(record)
    for mapping, records in by_mapping.values():
        record_consents(session, source, mapping, records, result, settings)
    session.execute(
        update(QuarantineEntry)
        .where(QuarantineEntry.id.in_([entry.id for entry, _, _ in good]))
        .values(status="resolved", resolved_at=utcnow())
    )
    summary.resolved += len(good)


__all__ = [
    "FileImportError",
    "ImportSummary",
    "SourceError",
    "import_file",
    "list_quarantine",
    "retry_quarantine",
]
