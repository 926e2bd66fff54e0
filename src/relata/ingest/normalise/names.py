"""Names of people, companies and places."""

from __future__ import annotations

import re
import unicodedata

# --- names ----------------------------------------------------------------------------------

# Lower-case in German and Dutch surnames ("von der Heide") and place names ("Frankfurt am Main").
_PARTICLES = frozenset(
    {"von", "vom", "van", "der", "den", "dem", "des", "zu", "zum", "zur", "de", "di", "du"}
    | {"am", "an", "im", "in", "ob", "auf", "bei", "und"}
)
_LEGAL_FORMS = {f.lower(): f for f in ("GmbH", "mbH", "AG", "KG", "KGaA", "OHG", "UG", "GbR", "SE")}
_LEGAL_FORMS |= {f.lower(): f for f in ("eG", "PartG", "e.V.", "e.K.", "Co.", "Co", "Ltd.", "Inc.")}
_LETTERS = re.compile(r"[^\W\d_]+")


def _capitalise(match: re.Match[str]) -> str:
    word = match[0]
    return word[0].upper() + word[1:].lower()


def _title_word(word: str, index: int, count: int, field: str) -> str:
    lower = word.lower()
    # A surname may start with its particle; a street, city or firm is capitalised at the start.
    may_lower = index > 0 or field == "last_name"
    if lower in _PARTICLES and may_lower and index < count - 1:
        return lower
    if field == "company" and lower in _LEGAL_FORMS:
        return _LEGAL_FORMS[lower]
    return _LETTERS.sub(_capitalise, word)


def title_case(text: str, field: str = "last_name") -> str:
    words = text.split(" ")
    return " ".join(_title_word(w, i, len(words), field) for i, w in enumerate(words))


def normalise_name(text: str, field: str = "last_name") -> str:
    """First and last names, company, city and street: tidy spacing; fix shouting or all-lower."""
    text = " ".join(unicodedata.normalize("NFC", text).split())
    # Mixed case is someone's deliberate spelling ("McDonald", "DiCaprio"): leave it.
    if len(text) > 1 and (text.isupper() or text.islower()):
        return title_case(text, field)
    return text
