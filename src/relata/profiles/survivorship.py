"""Survivorship: which source wins each field of the golden record. Pure, no I/O.

Fields are decided in units: the address (street, house number, postcode, city,
country) always comes from one record as a whole, so a golden record never pairs
one source's street with another source's city.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

ADDRESS = ("street", "house_number", "postcode", "city", "country")
UNITS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("first_name", ("first_name",)),
    ("last_name", ("last_name",)),
    ("birth_date", ("birth_date",)),
    ("gender", ("gender",)),
    ("company", ("company",)),
    ("email", ("email",)),
    ("phone", ("phone",)),
    ("address", ADDRESS),
    ("customer_number", ("customer_number",)),
    ("loyalty_card", ("loyalty_card",)),
)
GOLDEN_FIELDS = tuple(f for _, fields in UNITS for f in fields)
_GOLDEN_SET = frozenset(GOLDEN_FIELDS)
RULES = ("trust", "recent")
ONLY = "only"  # the rule named in provenance when one record decided every field
PROVENANCE_RULES = (*RULES, ONLY)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One source record as survivorship sees it."""

    source: str
    source_key: str
    trust: int
    at: datetime
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Golden:
    values: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)


def _rank(rule: str, c: Candidate) -> tuple[Any, ...]:
    # The source key breaks the last tie so the result never depends on input order.
    if rule == "recent":
        return (c.at, c.trust, c.source_key)
    return (c.trust, c.at, c.source_key)


def _complete_address(data: Mapping[str, Any]) -> bool:
    return bool(data.get("street") and (data.get("postcode") or data.get("city")))


def _only(c: Candidate) -> Golden:
    """One record: every field it has wins (the common case of a bulk import)."""
    values = {f: v for f, v in c.data.items() if v and f in _GOLDEN_SET}
    origin = {"source": c.source, "source_key": c.source_key, "at": _iso(c.at), "rule": ONLY}
    return Golden(values, dict.fromkeys(values, origin))


_last_iso: tuple[datetime | None, str] = (None, "")


def _iso(at: datetime) -> str:
    # A batch stamps all its records with one time; format it once, not per record.
    global _last_iso
    if _last_iso[0] is not at:
        _last_iso = (at, at.isoformat())
    return _last_iso[1]


def golden(candidates: Sequence[Candidate], rules: Mapping[str, str] | None = None) -> Golden:
    """Pick every unit's value from the best candidate that has it."""
    if len(candidates) == 1:
        return _only(candidates[0])
    rules = rules or {}
    values: dict[str, Any] = {}
    provenance: dict[str, dict[str, Any]] = {}
    for unit, fields in UNITS:
        rule = rules.get(unit, "trust")
        having = [c for c in candidates if any(c.data.get(f) for f in fields)]
        if unit == "address":
            # A complete address beats a better source's fragment of one.
            complete = [c for c in having if _complete_address(c.data)]
            having = complete or having
        if not having:
            continue
        best = max(having, key=lambda c, r=rule: _rank(r, c))
        for f in fields:
            value = best.data.get(f)
            if value:
                values[f] = value
                provenance[f] = {
                    "source": best.source,
                    "source_key": best.source_key,
                    "at": best.at.isoformat(),
                    "rule": rule,
                }
    return Golden(values, provenance)


def pack(provenance: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Provenance as stored: each origin once, fields pointing at it.

    Most fields of a golden record come from the same one or two records; storing the
    origin once per field made it the largest column of ``customers``.
    """
    if len({id(p) for p in provenance.values()}) == 1:  # one origin for every field
        p = next(iter(provenance.values()))
        origin = [p["source"], p["source_key"], p["at"], p.get("rule", "trust")]
        return {"f": dict.fromkeys(provenance, 0), "o": [origin]}
    origins: list[list[Any]] = []
    index: dict[tuple[Any, ...], int] = {}
    fields: dict[str, int] = {}
    for name, p in provenance.items():
        key = (p["source"], p["source_key"], p["at"], p.get("rule", "trust"))
        if key not in index:
            index[key] = len(origins)
            origins.append(list(key))
        fields[name] = index[key]
    return {"f": fields, "o": origins}


def unpack(stored: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    if "f" not in stored:  # written unpacked, before packing existed
        return {k: dict(v) for k, v in stored.items() if isinstance(v, Mapping)}
    origins = stored.get("o", [])
    return {
        name: dict(zip(("source", "source_key", "at", "rule"), origins[i], strict=True))
        for name, i in stored.get("f", {}).items()
    }
