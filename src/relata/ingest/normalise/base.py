"""Shared pieces of normalisation: the canonical fields, the error, the match key."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

CANONICAL_FIELDS = (
    "first_name",
    "last_name",
    "birth_date",
    "email",
    "phone",
    "street",
    "house_number",
    "postcode",
    "city",
    "country",
    "customer_number",
    "loyalty_card",
    "gender",
    "company",
)
# A row with none of these cannot be linked to anyone, so it is quarantined.
IDENTIFYING_FIELDS = (
    "first_name",
    "last_name",
    "company",
    "email",
    "phone",
    "customer_number",
    "loyalty_card",
)
# Fields whose invalid value is dropped with a note; any other invalid value rejects the row.
DROPPABLE_FIELDS = frozenset({"email", "phone", "country", "gender"})
EARLIEST_BIRTH_YEAR = 1880
_CANONICAL_SET = frozenset(CANONICAL_FIELDS)
_CACHE_SIZE = 100_000
_MISSING = frozenset({"", "null", "none", "n/a", "-"})


class InvalidValue(ValueError):
    """A value that cannot be normalised; the message says what is wrong with it."""


@dataclass(frozen=True, slots=True)
class Normalised:
    data: dict[str, str]
    dropped: dict[str, str]
    problems: tuple[str, ...]


def is_missing(value: str | None) -> bool:
    return value is None or value.strip().lower() in _MISSING


# --- matching key ---------------------------------------------------------------------------

_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})
_NON_ALNUM = re.compile(r"[\W_]+")


def fold(text: str) -> str:
    """Key for searching and matching: "Müller-Lüdenscheidt" and "MUELLER LUEDENSCHEIDT" meet."""
    text = unicodedata.normalize("NFKC", text).casefold().translate(_UMLAUTS)
    if not text.isascii():
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NON_ALNUM.sub(" ", text).strip()
