"""The current consent state, derived from the ledger. Pure: no I/O.

Each purpose × channel is decided on its own. A *side* is an origin: the customer an
entry was first recorded for, before any merge; an entry ``covers`` the sides it was
given over (always its own). A revocation is **live** until a newer grant covering its
side follows it. Then:

- **granted** when there is a grant and no live revocation;
- otherwise **pending** when an opt-in request is newer than every live revocation;
- otherwise **revoked** when there is a revocation, else **unknown**.

On a customer that was never merged every entry covers the only side, and this is simply
"the latest entry wins, a revocation wins a tie". After a merge a grant of one side never
outweighs a revocation of the other, however much newer: only that side's own later
grant, or a grant given over the merged customer (covering both sides), does. Unmerge
moves the entries back, and each side is decided by its own ledger again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

CHANNELS = ("email", "sms", "phone", "post", "web", "push")
ACTIONS = ("grant", "revoke", "request")
STATUSES = ("granted", "pending", "revoked", "unknown")

Key = tuple[str, str]  # (purpose, channel)


@dataclass(frozen=True, slots=True)
class Entry:
    purpose: str
    channel: str
    action: str  # grant | revoke | request
    at: datetime
    origin: int
    covers: frozenset[int] = field(default_factory=frozenset)
    id: int = 0

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown consent action {self.action!r}")
        # An entry is always given over its own side.
        object.__setattr__(self, "covers", frozenset(self.covers) | {self.origin})


@dataclass(frozen=True, slots=True)
class State:
    status: str  # granted | pending | revoked | unknown
    since: datetime | None = None  # when the deciding entry happened
    entry_id: int | None = None  # the deciding entry

    @property
    def allowed(self) -> bool:
        return self.status == "granted"


UNKNOWN = State("unknown")


def _latest(entries: list[Entry]) -> Entry:
    return max(entries, key=lambda e: (e.at, e.id))


def decide(entries: Iterable[Entry]) -> State:
    """The state of one purpose × channel from its entries, in any order."""
    grants: list[Entry] = []
    revokes: list[Entry] = []
    requests: list[Entry] = []
    for e in entries:
        {"grant": grants, "revoke": revokes, "request": requests}[e.action].append(e)
    live = [r for r in revokes if not any(g.at > r.at and r.origin in g.covers for g in grants)]
    if grants and not live:
        g = _latest(grants)
        return State("granted", g.at, g.id)
    waiting = [q for q in requests if all(q.at > r.at for r in live)]
    if waiting:
        q = _latest(waiting)
        return State("pending", q.at, q.id)
    if live:
        r = _latest(live)
        return State("revoked", r.at, r.id)
    return UNKNOWN


def derive(entries: Iterable[Entry]) -> dict[Key, State]:
    """Every purpose × channel the ledger mentions, with its current state."""
    by_key: dict[Key, list[Entry]] = defaultdict(list)
    for e in entries:
        by_key[(e.purpose, e.channel)].append(e)
    return {key: decide(group) for key, group in by_key.items()}
