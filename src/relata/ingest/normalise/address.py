"""Postcodes, streets, house numbers and countries."""

from __future__ import annotations

import re
from functools import lru_cache

import pycountry

from relata.ingest.normalise.base import InvalidValue, fold
from relata.ingest.normalise.names import normalise_name

# --- address --------------------------------------------------------------------------------

_POSTCODE_PREFIX = re.compile(r"^(?:D|DE|A|CH)\s*-\s*", re.IGNORECASE)


def _without_float_suffix(text: str) -> str:
    """ "12345.0" -> "12345": a spreadsheet read the number as a float."""
    if text.endswith(".0") and text[:-2].isdigit():
        return text[:-2]
    return text


def normalise_postcode(text: str, country: str | None = None) -> str:
    code = text.strip()
    if code.isdigit():
        return "0" + code if country == "DE" and len(code) == 4 else code
    code = _without_float_suffix(_POSTCODE_PREFIX.sub("", code))
    # Excel reads PLZ 01067 as the number 1067; only for Germany is the lost zero certain,
    # since Austria, Switzerland and others have four-digit codes of their own.
    if country == "DE" and len(code) == 4 and code.isdigit():
        return "0" + code
    return " ".join(code.upper().split())


# Where a street ends in its house number: "Hauptstr. 5a", "Am Markt 12-14", "Lindenweg 3 b".
_TRAILING_NUMBER = re.compile(r"(?:\s+|(?<=\.))(\d+\s?[a-zA-Z]?(?:\s*[-/]\s*\d+\s?[a-zA-Z]?)?)$")
_TWO_LETTERS = re.compile(r"[^\W\d_].*[^\W\d_]")
_HOUSE_NUMBER_GAP = re.compile(r"\s*([-/])\s*|(?<=\d) (?=[a-z]\b)")
_STR_ABBREVIATION = re.compile(r"([sS])tr\.(?=[\s,-]|$)")


def split_street(street: str) -> tuple[str, str]:
    """(street, house number) when the number was written into the street column."""
    street = street.strip()
    match = _TRAILING_NUMBER.search(street)
    # "B 27" is a federal road, not street "B" number 27: a street name has two letters.
    if match is None or not _TWO_LETTERS.search(name := street[: match.start()]):
        return street, ""
    return name.rstrip(" ,"), match[1]


def normalise_street(text: str) -> str:
    """ "Hauptstr." -> "Hauptstraße", "Berliner Str." -> "Berliner Straße"."""
    return _STR_ABBREVIATION.sub(lambda m: f"{m[1]}traße", normalise_name(text, "street"))


def normalise_house_number(text: str) -> str:
    """ "5 A" -> "5a", "12 - 14" -> "12-14"."""
    number = _without_float_suffix(" ".join(text.lower().split()))
    if " " not in number:
        return number
    return _HOUSE_NUMBER_GAP.sub(lambda m: m[1] or "", number)


# --- country, gender, identifiers -----------------------------------------------------------

# Spellings pycountry does not know, keyed by fold(): German names and everyday short forms.
_COUNTRY_NAMES = {
    "DE": ("deutschland", "brd", "bundesrepublik deutschland", "d"),
    "AT": ("oesterreich", "osterreich", "a"),
    "CH": ("schweiz",),
    "NL": ("niederlande", "holland"),
    "FR": ("frankreich",),
    "IT": ("italien",),
    "ES": ("spanien",),
    "PT": ("portugal",),
    "PL": ("polen",),
    "BE": ("belgien",),
    "DK": ("daenemark", "danemark"),
    "LU": ("luxemburg",),
    "LI": ("liechtenstein",),
    "CZ": ("tschechien", "tschechische republik"),
    "SK": ("slowakei",),
    "HU": ("ungarn",),
    "GB": ("vereinigtes koenigreich", "grossbritannien", "england", "schottland", "uk"),
    "US": ("vereinigte staaten", "vereinigte staaten von amerika", "usa", "amerika"),
    "TR": ("tuerkei", "turkei", "turkey"),
    "GR": ("griechenland",),
    "SE": ("schweden",),
    "NO": ("norwegen",),
    "FI": ("finnland",),
    "IE": ("irland",),
    "RO": ("rumaenien",),
    "BG": ("bulgarien",),
    "HR": ("kroatien",),
    "SI": ("slowenien",),
    "RU": ("russland",),
    "CA": ("kanada",),
}
_COUNTRY_BY_NAME = {name: code for code, names in _COUNTRY_NAMES.items() for name in names}


@lru_cache(maxsize=1024)
def _country(key: str) -> str:
    if code := _COUNTRY_BY_NAME.get(fold(key)):
        return code
    try:
        return pycountry.countries.lookup(key).alpha_2
    except LookupError:
        return ""


def normalise_country(text: str) -> str:
    """ISO 3166 alpha-2 from a code, an English name or a German name."""
    code = _country(" ".join(text.split()))
    if not code:
        raise InvalidValue(f"'{text}' is not a known country")
    return code
