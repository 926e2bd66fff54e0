"""The comparisons of the matching model, written once for two engines. Pure, no I/O.

Every level says how to test a pair in Python (real-time matching, the clustering guard,
explanations) and how to build the same test as a Splink level (batch matching in SQL).
`tests/test_matching_comparisons.py` holds the two to the same answer on random pairs.
Levels are tried in order; the first that holds is the pair's level for that comparison.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from rapidfuzz.distance import DamerauLevenshtein as _DL
from rapidfuzz.distance import JaroWinkler as _JW

from relata.identity.matching.features import Features


def _value(f: Features, col: str) -> Any:
    value = getattr(f, col)
    return value if value != () else None  # an empty list is as missing as NULL


class Level:
    label: str = ""
    tf: str | None = None  # column of a term-frequency adjustment (exact levels only)
    is_null = False
    # Evidence another comparison already counts: weighs nothing (m = u after training).
    neutral = False

    def test(self, left: Features, right: Features) -> bool:
        raise NotImplementedError

    def splink(self, cll: ModuleType) -> Any:
        """The Splink level creator (``cll`` is splink.comparison_level_library)."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Null(Level):
    """The value is missing on either side (all of ``cols``, if several)."""

    cols: tuple[str, ...]
    label: str = "missing"
    is_null = True

    def test(self, left: Features, right: Features) -> bool:
        return all(_value(left, c) is None or _value(right, c) is None for c in self.cols)

    def splink(self, cll: ModuleType) -> Any:
        levels = [cll.NullLevel(c) for c in self.cols]
        level = levels[0] if len(levels) == 1 else cll.And(*levels)
        return level.configure(is_null_level=True, label_for_charts=self.label)

    def describe(self) -> str:
        return f"null({','.join(self.cols)})"


@dataclass(frozen=True)
class Exact(Level):
    col: str
    label: str = "exact"
    tf: str | None = None
    neutral: bool = False

    def test(self, left: Features, right: Features) -> bool:
        value = _value(left, self.col)
        return value is not None and value == _value(right, self.col)

    def splink(self, cll: ModuleType) -> Any:
        level = cll.ExactMatchLevel(self.col, term_frequency_adjustments=bool(self.tf))
        return level.configure(label_for_charts=self.label)

    def describe(self) -> str:
        return f"exact({self.col},tf={self.tf},neutral={self.neutral})"


@dataclass(frozen=True)
class Reversed(Level):
    """Two columns swapped between the records: first and last name."""

    a: str
    b: str
    label: str = "swapped"
    neutral: bool = False

    def test(self, left: Features, right: Features) -> bool:
        la, lb = _value(left, self.a), _value(left, self.b)
        return (
            la is not None
            and lb is not None
            and (la, lb) == (_value(right, self.b), _value(right, self.a))
        )

    def splink(self, cll: ModuleType) -> Any:
        level = cll.ColumnsReversedLevel(self.a, self.b, symmetrical=True)
        return level.configure(label_for_charts=self.label)

    def describe(self) -> str:
        return f"reversed({self.a},{self.b},neutral={self.neutral})"


@dataclass(frozen=True)
class EqualsOther(Level):
    """The left record's ``col`` is the right record's ``other`` (a swapped date)."""

    col: str
    other: str
    label: str = "equals other"

    def test(self, left: Features, right: Features) -> bool:
        value = _value(left, self.col)
        return value is not None and value == _value(right, self.other)

    def splink(self, cll: ModuleType) -> Any:
        level = cll.CustomLevel(f"{self.col}_l = {self.other}_r", self.label, "duckdb")
        return level

    def describe(self) -> str:
        return f"equals({self.col},{self.other})"


@dataclass(frozen=True)
class JaroWinkler(Level):
    col: str
    threshold: float
    label: str = "similar"
    neutral: bool = False

    def test(self, left: Features, right: Features) -> bool:
        a, b = _value(left, self.col), _value(right, self.col)
        return a is not None and b is not None and _JW.similarity(a, b) >= self.threshold

    def splink(self, cll: ModuleType) -> Any:
        return cll.JaroWinklerLevel(self.col, self.threshold).configure(label_for_charts=self.label)

    def describe(self) -> str:
        return f"jw({self.col},{self.threshold},neutral={self.neutral})"


@dataclass(frozen=True)
class DamerauLevenshtein(Level):
    col: str
    distance: int
    label: str = "typo"

    def test(self, left: Features, right: Features) -> bool:
        a, b = _value(left, self.col), _value(right, self.col)
        return a is not None and b is not None and _DL.distance(a, b) <= self.distance

    def splink(self, cll: ModuleType) -> Any:
        level = cll.DamerauLevenshteinLevel(self.col, self.distance)
        return level.configure(label_for_charts=self.label)

    def describe(self) -> str:
        return f"dl({self.col},{self.distance})"


@dataclass(frozen=True)
class Overlap(Level):
    """Two lists share an element."""

    col: str
    label: str = "share a part"

    def test(self, left: Features, right: Features) -> bool:
        a, b = _value(left, self.col), _value(right, self.col)
        return a is not None and b is not None and not set(a).isdisjoint(b)

    def splink(self, cll: ModuleType) -> Any:
        return cll.ArrayIntersectLevel(self.col, 1).configure(label_for_charts=self.label)

    def describe(self) -> str:
        return f"overlap({self.col})"


@dataclass(frozen=True)
class Flag(Level):
    """A boolean column is true on the left record (used inside `Both`)."""

    col: str
    label: str = "flag"

    def test(self, left: Features, right: Features) -> bool:
        return bool(getattr(left, self.col))

    def splink(self, cll: ModuleType) -> Any:
        return cll.CustomLevel(f"{self.col}_l", self.label, "duckdb")

    def describe(self) -> str:
        return f"flag({self.col})"


@dataclass(frozen=True)
class Both(Level):
    levels: tuple[Level, ...]
    label: str = "both"

    def test(self, left: Features, right: Features) -> bool:
        return all(level.test(left, right) for level in self.levels)

    def splink(self, cll: ModuleType) -> Any:
        return cll.And(*(level.splink(cll) for level in self.levels)).configure(
            label_for_charts=self.label
        )

    def describe(self) -> str:
        return "and(" + ",".join(level.describe() for level in self.levels) + ")"


@dataclass(frozen=True)
class Else(Level):
    label: str = "different"

    def test(self, left: Features, right: Features) -> bool:
        return True

    def splink(self, cll: ModuleType) -> Any:
        return cll.ElseLevel().configure(label_for_charts=self.label)

    def describe(self) -> str:
        return "else"


@dataclass(frozen=True)
class Comparison:
    name: str
    title: str  # what the explanation calls it
    shows: tuple[str, ...]  # feature columns an explanation shows for each side
    levels: tuple[Level, ...]

    def level_of(self, left: Features, right: Features) -> int:
        """Index of the first level that holds (the last level is `Else`)."""
        for i, level in enumerate(self.levels):
            if level.test(left, right):
                return i
        raise AssertionError(f"comparison {self.name} has no else level")  # pragma: no cover

    def splink(self, cll: ModuleType, cl: ModuleType) -> Any:
        return cl.CustomComparison(
            comparison_levels=[level.splink(cll) for level in self.levels],
            output_column_name=self.name,
            comparison_description=self.title,
        )


def _names(col: str, other: str, tokens: str, title: str) -> Comparison:
    extra: list[Level] = [Overlap(tokens, "double name: one part the same")]
    if col == "forename":
        extra.append(Overlap("forename_alias", "nickname of the same name"))
    return Comparison(
        col,
        title,
        (col,),
        (
            Null((col,)),
            Exact(col, "exact", tf=col),
            Exact(f"{col}_sk", "same but for umlaut spelling or doubled letters"),
            # Both name comparisons see a swap; only the first name's counts it, or a
            # swapped pair would weigh twice what the pair written alike weighs.
            Reversed(col, other, "first and last name swapped", neutral=col == "surname"),
            *extra,
            Exact(f"{col}_ph", "sounds the same (Kölner Phonetik)"),
            JaroWinkler(col, 0.92, "Jaro-Winkler ≥ 0.92"),
            JaroWinkler(col, 0.85, "Jaro-Winkler ≥ 0.85"),
            Else(),
        ),
    )


COMPARISONS: tuple[Comparison, ...] = (
    _names("forename", "surname", "forename_tokens", "first name"),
    _names("surname", "forename", "surname_tokens", "last name"),
    Comparison(
        "dob",
        "birth date",
        ("dob",),
        (
            Null(("dob",)),
            Exact("dob", "exact"),
            EqualsOther("dob", "dob_swapped", "day and month swapped"),
            DamerauLevenshtein("dob", 1, "one digit off"),
            Else(),
        ),
    ),
    Comparison(
        "gender",
        "gender",
        ("gender",),
        (Null(("gender",)), Exact("gender", "same"), Else()),
    ),
    Comparison(
        "email",
        "e-mail",
        ("email",),
        (
            Null(("email",)),
            Both((Exact("email"), Flag("email_household")), "same family address (shared)"),
            Exact("email", "same address"),
            # A local part is mostly the name ("walter.giess@…"), which the name comparisons
            # count already: two people of one name at two providers are no evidence.
            Exact("email_local", "same local part, other domain", neutral=True),
            JaroWinkler("email_local", 0.9, "similar local part", neutral=True),
            Else(),
        ),
    ),
    Comparison(
        "phone",
        "phone",
        ("phone",),
        (
            Null(("phone",)),
            Both((Exact("phone"), Flag("phone_mobile")), "same mobile number"),
            Exact("phone", "same landline (households share it)"),
            Else(),
        ),
    ),
    Comparison(
        "address",
        "street and house number",
        ("street", "hnr"),
        (
            Null(("street",)),
            Both((Exact("street"), Exact("hnr")), "same street and number"),
            Both((Exact("street"), Exact("hnr_base")), "same street, number suffix differs"),
            Both((JaroWinkler("street", 0.9), Exact("hnr_base")), "street spelled differently"),
            Exact("street", "same street, other number"),
            Else(),
        ),
    ),
    Comparison(
        "place",
        "postcode and city",
        ("postcode", "city"),
        (
            Null(("postcode", "city")),
            Exact("postcode", "same postcode"),
            Exact("city", "same city, other postcode", tf="city"),
            Exact("postcode3", "same postcode area"),
            JaroWinkler("city", 0.9, "city spelled differently"),
            Else(),
        ),
    ),
)


# Two records whose first names share nothing (no spelling, sound, part, nickname or swap
# explains the difference) or whose birth dates differ beyond a swap or one digit are two
# people, however much else they share: families share surname, address, e-mail and
# landline, and that evidence adds up past any threshold. Such a pair is never merged
# (the twins and fathers and sons are exactly these pairs). Only where the model
# learnt that the difference is evidence against a match (a negative weight).
CONFLICT_COMPARISONS = ("forename", "dob")


def conflict_levels(
    names: Sequence[str] = CONFLICT_COMPARISONS, comparisons: Sequence[Comparison] = COMPARISONS
) -> dict[int, int]:
    """Comparison index → index of its `Else` level, for the conflict comparisons."""
    return {i: len(c.levels) - 1 for i, c in enumerate(comparisons) if c.name in names}


def comparison_levels(
    left: Features, right: Features, comparisons: Sequence[Comparison] = COMPARISONS
) -> list[int]:
    return [c.level_of(left, right) for c in comparisons]


def spec_hash(comparisons: Sequence[Comparison] = COMPARISONS) -> str:
    """Changes whenever a level changes: a model trained on another spec is not used."""
    text = ";".join(
        f"{c.name}:" + ",".join(level.describe() for level in c.levels) for c in comparisons
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]
