"""The rows batch matching compares: each customer's golden record and the source records
that say something else. Pure, no I/O.

A customer with one source record has one row (its golden record is that record). One
with several also has a row for every record whose features differ from the golden
record's, so an old address or a maiden name still finds its match.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from relata.identity.matching.features import BLOCKING_KEYS, COLUMNS, MAX_BLOCK, Features, features


@dataclass
class Rows:
    """Row i is ``features(i)`` of customer ``customer[i]``."""

    customer: list[int] = field(default_factory=list)
    rows: list[Features] = field(default_factory=list)
    of_customer: dict[int, list[int]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.customer)

    def add(self, customer_id: int, f: Features, known: set[Features] | None = None) -> None:
        """Row ``f`` of a customer; ``known``: the customer's features so far, if at hand."""
        rows = self.of_customer.setdefault(customer_id, [])
        if known is None:
            known = {self.rows[i] for i in rows}
        if f in known:
            return  # the same features again say nothing new
        known.add(f)
        rows.append(len(self.customer))
        self.customer.append(customer_id)
        self.rows.append(f)

    def features(self, i: int) -> Features:
        return self.rows[i]

    def table_columns(self) -> dict[str, list[Any]]:
        columns = list(zip(*self.rows, strict=True)) if self.rows else [()] * len(COLUMNS)
        return {
            "row_id": list(range(len(self))),
            "customer_id": self.customer,
            **{name: list(values) for name, values in zip(COLUMNS, columns, strict=True)},
        }

    def drop_crowded_keys(self, limit: int = MAX_BLOCK) -> dict[str, int]:
        """Blank blocking keys more rows share than ``limit``; returns how many per key."""
        dropped = {}
        for key in BLOCKING_KEYS:
            counts = Counter(v for f in self.rows if (v := getattr(f, key)) is not None)
            crowded = {v for v, n in counts.items() if n > limit}
            if not crowded:
                continue
            dropped[key] = len(crowded)
            for i, f in enumerate(self.rows):
                if getattr(f, key) in crowded:
                    self.rows[i] = f._replace(**{key: None})
        return dropped


def build(records: Iterable[tuple[int, Mapping[str, Any]]]) -> Rows:
    """Rows from (customer id, canonical fields) in any order; golden records first is best."""
    rows = Rows()
    for customer_id, data in records:
        rows.add(customer_id, features(data))
    return rows
