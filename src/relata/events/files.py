"""Events from a JSONL file (one Segment-style message a line), e.g. a tracker's export."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
from pydantic import TypeAdapter, ValidationError

from relata.config import Settings
from relata.db import Database
from relata.events import service
from relata.events.schemas import Message
from relata.ingest.service import FileImportError, Rejected, quarantine, refresh_statistics
from relata.ingest.sources import require_source

_message = TypeAdapter(Message)
BATCH = 1000


@dataclass(slots=True)
class EventsSummary:
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
        }


def _explain(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(
        str(p) for p in first["loc"] if str(p) not in {"identify", "track", "page", "alias"}
    )
    return f"{where or 'message'}: {first['msg']}"


def import_events_file(
    db: Database,
    path: Path,
    source_name: str,
    settings: Settings,
    progress: Callable[[int], None] | None = None,
) -> EventsSummary:
    if not path.is_file():
        raise FileImportError(f"no such file: {path}")
    with db.session() as session:
        require_source(session, source_name)
    summary = EventsSummary()
    batch: list[object] = []
    rejected: list[Rejected] = []

    flushes = 0

    def flush() -> None:
        nonlocal flushes
        flushes += 1
        if flushes & (flushes - 1) == 0:
            refresh_statistics(db, ", events, holdings")
        with db.session() as session:
            if batch:
                done = service.ingest(session, batch, settings, source_name)
                summary.accepted += done.accepted
                summary.duplicates += done.duplicates
                summary.quarantined += done.quarantined
            quarantine(session, require_source(session, source_name), str(path), rejected)
        summary.quarantined += len(rejected)
        if progress:
            progress(len(batch) + len(rejected))
        batch.clear()
        rejected.clear()

    with path.open("rb") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            text = line.decode("utf-8", errors="replace").rstrip("\r\n")
            try:
                batch.append(_message.validate_python(orjson.loads(line)))
            except orjson.JSONDecodeError as exc:
                rejected.append(Rejected(line_no, "line", text, f"invalid JSON: {exc}"))
            except ValidationError as exc:
                rejected.append(Rejected(line_no, "line", text, _explain(exc)))
            if len(batch) + len(rejected) >= BATCH:
                flush()
    if batch or rejected:
        flush()
    return summary
