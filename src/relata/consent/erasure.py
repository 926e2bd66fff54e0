"""Art. 17 erasure, and the tombstones that keep an erased person from coming back.

``erase`` runs in the caller's transaction, so it lands whole or not at all. What is
held about the person is removed or made anonymous everywhere: source records and
identifiers are deleted, events keep only their type, name and time, holdings lose the
order or contract number, the consent ledger and tokens are deleted, merge logs lose
the snapshots and reasons, quarantined rows carrying their identifiers are deleted, and
the customer row stays as an empty tombstone (status "erased") so that ids in logs stay
valid. What is kept is a salted hash (HMAC-SHA256) of each identifier and record key;
:func:`erased` looks a later import's identifiers up among them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, cast, delete, literal, select, update
from sqlalchemy.orm import Session

from relata.config import Settings
from relata.consent import cache, keys, person, quarantined
from relata.consent.models import ConsentEntry, ConsentToken, ErasureTombstone
from relata.db import insert_ignoring_duplicates, utcnow
from relata.events.models import Event
from relata.events.timeline import record_system_event
from relata.identity import service as identity
from relata.identity.models import Identifier, Merge
from relata.ingest.models import QuarantineEntry, SourceRecord
from relata.ingest.sources import system_source
from relata.profiles.models import Customer, Holding
from relata.profiles.survivorship import GOLDEN_FIELDS

CHUNK = 500
ERASED_REASON = "erased"


def digest(salt: bytes, key: tuple[str, str]) -> str:
    kind, value = key
    return hmac.new(salt, f"{kind}\x1f{value}".encode(), hashlib.sha256).hexdigest()


def erasure_keys(
    source: str,
    source_key: str,
    data: Mapping[str, Any],
    extra_ids: Iterable[Sequence[str]] = (),
) -> list[tuple[str, str]]:
    """What to look up before a record is linked: its record key and its identifiers."""
    return [
        person.source_key(source, source_key),
        *identity.record_identifiers(data, extra_ids),
    ]


def erased(
    session: Session, identifiers: Iterable[tuple[str, str]], settings: Settings
) -> set[tuple[str, str]]:
    """Which of these (kind, value) keys belong to an erased person; indexed lookups.

    Costs one primary-key read when nobody was ever erased.
    """
    wanted = set(identifiers)
    if not wanted:
        return set()
    salt = keys.salt_for_lookup(session, settings.erasure_salt)
    if salt is None:
        return set()
    by_digest = {digest(salt, k): k for k in wanted}
    ordered = sorted(by_digest)
    found: set[tuple[str, str]] = set()
    for i in range(0, len(ordered), CHUNK):
        hits = session.scalars(
            select(ErasureTombstone.digest).where(
                ErasureTombstone.digest.in_(ordered[i : i + CHUNK])
            )
        )
        found.update(by_digest[d] for d in hits)
    return found


@dataclass(slots=True)
class Erasure:
    customer_id: int
    merged_ids: list[int] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"customer_id": self.customer_id, "merged_ids": self.merged_ids, **self.counts}


def _count(result: Any) -> int:
    return max(result.rowcount or 0, 0)


def _tombstones(session: Session, settings: Settings, root: int, found: person.Identity) -> int:
    salt = keys.salt_for_erasure(session, settings.erasure_salt)
    digests = sorted({digest(salt, k) for k in found.keys})
    if digests:
        now = utcnow()
        session.execute(
            insert_ignoring_duplicates(session, ErasureTombstone.__table__),
            [{"digest": d, "customer_id": root, "created_at": now} for d in digests],
        )
    return len(digests)


def _scrub_merges(session: Session, ids: list[int]) -> int:
    """Merge logs keep who was merged into whom, never what the erased person's record said."""
    member = set(ids)
    logs = list(
        session.scalars(select(Merge).where(Merge.survivor_id.in_(ids) | Merge.merged_id.in_(ids)))
    )
    for log in logs:
        before = dict(log.before or {})
        for side in ("survivor", "merged"):
            snapshot = before.get(side) or {}
            if snapshot.get("id") in member:
                before[side] = {"id": snapshot["id"], "erased": True}
        log.before = before
        # The reason names the shared identifier or the aliased user ids.
        log.reason = ERASED_REASON
    if logs:
        # Their "Customer Merged" events on the other person's timeline repeat the reason.
        system = system_source(session).id
        for event in session.scalars(
            select(Event).where(
                Event.source_id == system,
                Event.message_id.in_([f"merge:{log.id}" for log in logs]),
            )
        ):
            event.properties = {**event.properties, "reason": ERASED_REASON}
    session.flush()
    return len(logs)


def _anonymise_rows(session: Session, ids: list[int], counts: dict[str, int]) -> None:
    counts["events"] = _count(
        session.execute(
            update(Event)
            .where(Event.customer_id.in_(ids))
            .values(properties={}, context={}, user_id=None, anonymous_id=None)
            .execution_options(synchronize_session=False)
        )
    )
    # The order or contract number leads back to the person in the source's system; what
    # was bought, for how much and when stays for the figures.
    counts["holdings"] = _count(
        session.execute(
            update(Holding)
            .where(Holding.customer_id.in_(ids))
            .values(reference=literal("erased-", String) + cast(Holding.id, String))
            .execution_options(synchronize_session=False)
        )
    )


def _delete_rows(session: Session, ids: list[int], counts: dict[str, int]) -> None:
    for table, columns in person.other_tables():
        if person.kept_on_erasure(table):
            continue
        condition = None
        for name in columns:
            clause = table.c[name].in_(ids)
            condition = clause if condition is None else condition | clause
        counts[table.name] = _count(session.execute(delete(table).where(condition)))
    for model, name in (
        (ConsentToken, "consent_tokens"),
        (ConsentEntry, "consent_entries"),
        (Identifier, "identifiers"),
        (SourceRecord, "source_records"),
    ):
        counts[name] = _count(
            session.execute(
                delete(model)
                .where(model.customer_id.in_(ids))
                .execution_options(synchronize_session=False)
            )
        )


def _empty_customers(session: Session, ids: list[int]) -> None:
    values: dict[str, Any] = dict.fromkeys(GOLDEN_FIELDS)
    values.update(
        provenance={},
        first_name_key=None,
        last_name_key=None,
        status="erased",
        # Each an erased tombstone of its own: an unmerge now finds nothing to restore
        # (identity refuses, "no longer merged"), and an old id resolves to itself.
        merged_into_id=None,
        updated_at=utcnow(),
    )
    session.execute(
        update(Customer)
        .where(Customer.id.in_(ids))
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def erase(session: Session, customer_id: int, settings: Settings) -> Erasure:
    """Erase the person: ``customer_id`` and everyone merged into it. Irreversible.

    A merged-away id is refused (``CustomerMerged``): the survivor holds the data, and
    erasing it must be asked for by its own id.
    """
    root = person.root_customer(session, customer_id, follow=False).id
    ids = person.members(session, root)
    found = person.identity_of(session, ids)
    report = Erasure(root, [i for i in ids if i != root])
    counts = report.counts
    counts["tombstones"] = _tombstones(session, settings, root, found)
    gone = quarantined.about(session, found.quarantine, settings.default_region)
    for i in range(0, len(gone), CHUNK):
        session.execute(delete(QuarantineEntry).where(QuarantineEntry.id.in_(gone[i : i + CHUNK])))
    counts["quarantine"] = len(gone)
    counts["merges"] = _scrub_merges(session, ids)
    _delete_rows(session, ids, counts)
    _anonymise_rows(session, ids, counts)
    _empty_customers(session, ids)
    session.expire_all()  # the rows above changed behind the identity map
    record_system_event(
        session, root, "Customer Erased", f"erase:{root}", {"tombstones": counts["tombstones"]}
    )
    session.flush()
    cache.invalidate(session, ids)
    return report
