"""Consent conditions: ``consent.<purpose>.<channel> = "granted"`` (or pending, revoked,
unknown), the state ``relata.consent.ledger.decide`` derives from the customer's ledger.

Python reads the ledger through ``ledger.derive`` itself. SQL restates ``decide`` for all
customers at once, with correlated subqueries on the ledger (index customer_id, id):

- a revocation r is *live* unless a grant g with g.at > r.at covers r's side
  (g.origin = r.origin, or r.origin in g.covers);
- granted: a grant and no live revocation; else pending: a request newer than every
  live revocation; else revoked: a live revocation; else unknown.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from relata.consent.ledger import CHANNELS, STATUSES, Entry, derive
from relata.consent.models import ConsentEntry
from relata.segments.loader import Rows, register_loader
from relata.segments.profile import Profile
from relata.segments.rules.registry import Field, Registry

PREFIX = "consent."
PURPOSE = re.compile(r"[a-z0-9_]{1,64}")  # as Settings.consent_purposes allows


def consent_field(path: str) -> Field | None:
    parts = path.split(".")
    if len(parts) != 3 or not PURPOSE.fullmatch(parts[1]) or parts[2] not in CHANNELS:
        return None
    purpose, channel = parts[1], parts[2]

    def py(profile: Profile) -> str:
        return profile.extra.get("consent", {}).get((purpose, channel), "unknown")

    def sql(dialect: str, customers: sa.Table) -> Any:
        return status_sql(dialect, customers.c.id, purpose, channel)

    return Field(
        path,
        "text",
        source="custom",
        choices=STATUSES,
        group="consent",
        py=py,
        sql=sql,
        loads=("consent",),
        never_null=True,
    )


def status_sql(dialect: str, customer_id: Any, purpose: str, channel: str) -> Any:
    t = ConsentEntry.__table__

    def entries(action: str, name: str) -> Any:
        alias = t.alias(name)
        return alias, [
            alias.c.customer_id == customer_id,
            alias.c.purpose == sa.literal(purpose, sa.String()),
            alias.c.channel == sa.literal(channel, sa.String()),
            alias.c.action == action,
        ]

    def live(name: str) -> tuple[Any, list[Any]]:
        r, where = entries("revoke", name)
        g, covering = entries("grant", f"{name}_g")
        covers = _covers(dialect, g.c.covers, r.c.origin_customer_id)
        overridden = (
            sa.exists()
            .where(
                *covering,
                g.c.occurred_at > r.c.occurred_at,
                sa.or_(g.c.origin_customer_id == r.c.origin_customer_id, covers),
            )
            .correlate_except(g)  # nested two deep: name what is the subquery's own
        )
        return r, [*where, sa.not_(overridden)]

    _, grants = entries("grant", "cg")
    _, lives = live("cr")
    has_live = sa.exists().where(*lives)
    granted = sa.and_(sa.exists().where(*grants), sa.not_(has_live))
    q, requests = entries("request", "cq")
    r2, lives2 = live("cr2")
    newer_revocation = (
        sa.exists().where(*lives2, r2.c.occurred_at >= q.c.occurred_at).correlate_except(r2)
    )
    pending = sa.exists().where(*requests, sa.not_(newer_revocation))
    return sa.case(
        (granted, "granted"), (pending, "pending"), (has_live, "revoked"), else_="unknown"
    )


def _covers(dialect: str, covers: Any, origin: Any) -> Any:
    """``origin`` is in the JSON list ``covers``."""
    if dialect == "postgresql":
        return covers.op("@>")(sa.func.jsonb_build_array(origin))
    each = sa.func.json_each(covers).table_valued("value")
    return sa.exists().select_from(each).where(each.c.value == origin).correlate_except(each)


_E = ConsentEntry.__table__
_ENTRIES = sa.select(
    _E.c.customer_id,
    _E.c.purpose,
    _E.c.channel,
    _E.c.action,
    _E.c.occurred_at,
    _E.c.origin_customer_id,
    _E.c.covers,
    _E.c.id,
).where(_E.c.customer_id.in_(sa.bindparam("ids", expanding=True)))


def load_consents(session: Session, customer_ids: list[int]) -> dict[int, dict[Any, str]]:
    """Each customer's derived state per (purpose, channel), as its status."""
    found: dict[int, list[Entry]] = {cid: [] for cid in customer_ids}
    conn = session.connection()
    for i in range(0, len(customer_ids), 500):
        rows = conn.execute(_ENTRIES, {"ids": customer_ids[i : i + 500]})
        for cid, p, c, a, at, origin, covers, entry_id in rows:
            found[cid].append(Entry(p, c, a, at, origin, frozenset(covers or ()), entry_id))
    return {
        cid: {key: state.status for key, state in derive(entries).items()}
        for cid, entries in found.items()
    }


def _states_of_rows(rows: list[tuple[Any, ...]]) -> dict[Any, str]:
    """``load_consents``' value of one customer from the ledger rows ``load_packed`` read
    with the profile (driver values: derive needs only their order and equality)."""
    entries = [Entry(p, c, a, at, o, frozenset(cv or ()), i) for p, c, a, at, o, cv, i in rows]
    return {key: state.status for key, state in derive(entries).items()}


_ROWS = Rows(
    _E,
    "customer_id",
    ("purpose", "channel", "action", "occurred_at", "origin_customer_id", "covers", "id"),
    _states_of_rows,
)


def install(registry: Registry) -> None:
    registry.register_prefix(PREFIX, consent_field)
    # Live re-evaluation reads the ledger in the profile's one statement.
    register_loader("consent", load_consents, _ROWS)
