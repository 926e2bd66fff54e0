"""One customer in memory, as the Python compiler reads it. Pure: the loader fills it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any


@dataclass(slots=True)
class EventRow:
    name: str | None
    type: str
    source: str | None
    occurred_at: datetime
    properties: dict[str, Any]


@dataclass(slots=True)
class HoldingRow:
    kind: str
    product_id: str | None
    product_name: str | None
    category: str | None
    reference: str
    quantity: Decimal | None
    amount: Decimal | None
    currency: str | None
    status: str
    started_at: datetime
    ended_at: datetime | None


@dataclass(slots=True)
class IdentifierRow:
    kind: str
    value: str
    created_at: datetime


@dataclass(slots=True)
class Profile:
    """A customer's golden record (``fields``, by column name) and the rows rules look at.

    ``events`` may hold only the events the rules in use can see (see loader.Needs).
    """

    id: int
    fields: dict[str, str | date | datetime | None]
    events: list[EventRow] = field(default_factory=list)
    holdings: list[HoldingRow] = field(default_factory=list)
    identifiers: list[IdentifierRow] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def rows(self, collection: str) -> list[Any]:
        if collection == "events":
            return self.events
        if collection == "identifiers":
            return self.identifiers
        if collection == "purchases":
            return [h for h in self.holdings if h.kind == "purchase"]
        if collection == "contracts":
            return [h for h in self.holdings if h.kind == "contract"]
        return self.holdings
