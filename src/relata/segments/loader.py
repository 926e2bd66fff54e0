"""Customers read into memory for the Python compiler: only the rows the rules can see."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from relata.events.models import Event
from relata.identity.models import Identifier
from relata.ingest.models import Source
from relata.profiles.models import Customer, Holding
from relata.segments.profile import EventRow, HoldingRow, IdentifierRow, Profile
from relata.segments.rules import ast
from relata.segments.rules.ast import Node
from relata.segments.rules.registry import Registry
from relata.segments.rules.timing import moment_bounds

CHUNK = 500
# Events sent without the visitor's personalisation consent are kept, but never used to
# profile them: segments do not see them (the column comes with the consent work).
PROFILING = Event.__table__.c.get("profiling")
FIELD_COLUMNS = (
    "first_name",
    "last_name",
    "birth_date",
    "gender",
    "company",
    "email",
    "phone",
    "street",
    "house_number",
    "postcode",
    "city",
    "country",
    "customer_number",
    "loyalty_card",
    "created_at",
    "updated_at",
)
# name → fn(session, customer_ids) -> {customer_id: value}, stored in Profile.extra[name]
Loader = Callable[[Session, list[int]], dict[int, Any]]
_LOADERS: dict[str, Loader] = {}


def register_loader(name: str, loader: Loader) -> None:
    """For fields registered by other domains (consents): their data, per customer."""
    _LOADERS[name] = loader


@dataclass(frozen=True)
class Needs:
    """What a set of rules reads: which events (all names, or these; since when)."""

    all_events: bool = False
    event_names: frozenset[str] = frozenset()
    events_since: datetime | None = None
    holdings: bool = False
    identifiers: bool = False
    extras: frozenset[str] = frozenset()

    @property
    def events(self) -> bool:
        return self.all_events or bool(self.event_names)


def needs_of(nodes: Iterable[Node], registry: Registry, now: datetime) -> Needs:
    names: set[str] = set()
    all_events = holdings = identifiers = False
    unbounded = False
    since: datetime | None = None
    extras: set[str] = set()
    sources: list[ast.Source] = []
    for root in nodes:
        for node in ast.walk(root):
            if isinstance(node, ast.Has | ast.Agg):
                sources.append(node.source)
            elif isinstance(node, ast.Cond) and (spec := registry.field(node.field)):
                if spec.trait is not None:
                    _, collection, _, where = spec.trait
                    sources.append(ast.Source(collection, None, where))
                extras.update(spec.loads)
    for source in sources:
        if source.collection == "events":
            if source.name is None:
                all_events = True
            else:
                names.add(source.name)
            lo = moment_bounds(source.window, now).lo if source.window else None
            if lo is None:
                unbounded = True
            elif isinstance(lo, datetime):
                since = lo if since is None else min(since, lo)
        elif source.collection == "identifiers":
            identifiers = True
        else:
            holdings = True
    return Needs(
        all_events,
        frozenset(names),
        None if unbounded else since,
        holdings,
        identifiers,
        frozenset(extras),
    )


def load_profiles(
    session: Session, customer_ids: Iterable[int], needs: Needs
) -> dict[int, Profile]:
    """Active customers among ``customer_ids``, with the rows ``needs`` asks for."""
    ids = sorted(set(customer_ids))
    profiles: dict[int, Profile] = {}
    # Core on the session's connection, statements built once: this runs after every
    # event, and building and ORM-executing a select cost more than the query itself.
    conn = session.connection()
    for chunk in _chunks(ids):
        for cid, *values in conn.execute(_CUSTOMERS, {"ids": chunk}):
            profiles[cid] = Profile(cid, dict(zip(FIELD_COLUMNS, values, strict=True)))
    found = sorted(profiles)
    if not found:
        return profiles
    if needs.events:
        stmt = _events_statement(needs.all_events, needs.events_since is not None)
        params = {"names": sorted(needs.event_names), "since": needs.events_since}
        for chunk in _chunks(found):
            for cid, name, type_, source, at, props in conn.execute(stmt, {**params, "ids": chunk}):
                profiles[cid].events.append(EventRow(name, type_, source, at, props or {}))
    if needs.holdings:
        for chunk in _chunks(found):
            for cid, *rest in conn.execute(_HOLDINGS, {"ids": chunk}):
                profiles[cid].holdings.append(HoldingRow(*rest))
    if needs.identifiers:
        for chunk in _chunks(found):
            for cid, kind, value, at in conn.execute(_IDENTIFIERS, {"ids": chunk}):
                profiles[cid].identifiers.append(IdentifierRow(kind, value, at))
    for name in needs.extras:
        for cid, value in _LOADERS[name](session, found).items():
            profiles[cid].extra[name] = value
    return profiles


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i : i + CHUNK]


_IDS = bindparam("ids", expanding=True)
_C = Customer.__table__
_CUSTOMERS = select(_C.c.id, *(_C.c[c] for c in FIELD_COLUMNS)).where(
    _C.c.id.in_(_IDS), _C.c.status == "active"
)
_H = Holding.__table__
_HOLDINGS = select(
    _H.c.customer_id,
    *(
        _H.c[c]
        for c in ("kind", "product_id", "product_name", "category", "reference", "quantity",
                  "amount", "currency", "status", "started_at", "ended_at")
    ),
).where(_H.c.customer_id.in_(_IDS))  # fmt: skip
_I = Identifier.__table__
_IDENTIFIERS = select(_I.c.customer_id, _I.c.kind, _I.c.value, _I.c.created_at).where(
    _I.c.customer_id.in_(_IDS)
)
_EVENT_STATEMENTS: dict[tuple[bool, bool], Any] = {}


def _events_statement(all_names: bool, since: bool) -> Any:
    found = _EVENT_STATEMENTS.get((all_names, since))
    if found is None:
        e, src = Event.__table__, Source.__table__
        stmt = (
            select(e.c.customer_id, e.c.name, e.c.type, src.c.name, e.c.occurred_at, e.c.properties)
            .join_from(e, src, src.c.id == e.c.source_id)
            .where(e.c.customer_id.in_(_IDS))
        )
        if not all_names:
            stmt = stmt.where(e.c.name.in_(bindparam("names", expanding=True)))
        if since:
            stmt = stmt.where(e.c.occurred_at >= bindparam("since", type_=e.c.occurred_at.type))
        if PROFILING is not None:
            stmt = stmt.where(PROFILING.is_(True))
        found = _EVENT_STATEMENTS[(all_names, since)] = stmt
    return found
