"""Which quarantined rows carry a person's identifiers (for Art. 15 export and Art. 17 erasure).

A quarantined row is kept as delivered: no mapping was applied and nothing links it to
a customer. So each value is compared the way search guesses identifiers: as it is,
lower-cased, without spaces, as an e-mail address and as a phone number. A row of a
source whose record key the person has (a key column, or the content key) matches too.
This reads the whole quarantine once, a page at a time: erasure and export are rare.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from relata.ingest.mapping import content_key
from relata.ingest.models import QuarantineEntry
from relata.ingest.normalise import normalise_email, normalise_phone

PAGE = 1000
SHORTEST = 5  # shorter values would match by accident in an unparsed line


@dataclass(frozen=True, slots=True)
class Person:
    values: frozenset[str]  # identifier values as relata stores them (normalised)
    record_keys: Mapping[int, frozenset[str]] = field(default_factory=dict)  # source id -> keys


def _forms(value: str, region: str) -> set[str]:
    text = value.strip()
    forms = {text, text.lower(), "".join(text.split())}
    if "@" in text:
        with suppress(ValueError):
            forms.add(normalise_email(text))
    if sum(ch.isdigit() for ch in text) >= SHORTEST:
        with suppress(ValueError):
            forms.add(normalise_phone(text, region))
    return forms


def _row_matches(source_id: int, raw_kind: str, raw: str, person: Person, region: str) -> bool:
    if raw_kind != "row":
        text = raw.lower()
        return any(len(v) >= SHORTEST and v.lower() in text for v in person.values)
    try:
        row = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(row, dict):
        return False
    keys = person.record_keys.get(source_id, frozenset())
    if keys and content_key({str(k): str(v) for k, v in row.items() if v is not None}) in keys:
        return True
    for value in row.values():
        if not isinstance(value, str) or not value.strip():
            continue
        forms = _forms(value, region)
        if forms & person.values or forms & keys:
            return True
    return False


def _pages(session: Session) -> Iterator[list[tuple[int, int, str, str]]]:
    # Plain rows, not entities: the session would otherwise hold the whole quarantine.
    q = QuarantineEntry
    after = 0
    while True:
        page = [
            (i, s, k, r)
            for i, s, k, r in session.execute(
                select(q.id, q.source_id, q.raw_kind, q.raw)
                .where(q.id > after)
                .order_by(q.id)
                .limit(PAGE)
            )
        ]
        if not page:
            return
        yield page
        after = page[-1][0]


def about(session: Session, person: Person, region: str) -> list[int]:
    """Ids of the quarantined rows that carry one of the person's identifiers or record keys."""
    if not person.values and not person.record_keys:
        return []
    return [
        i
        for page in _pages(session)
        for i, source_id, kind, raw in page
        if _row_matches(source_id, kind, raw, person, region)
    ]
