"""Dates in ISO and German formats; birth dates."""

from __future__ import annotations

import re
from datetime import date

from relata.ingest.normalise.base import EARLIEST_BIRTH_YEAR, InvalidValue, is_missing

# --- dates ----------------------------------------------------------------------------------

_TIME = r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
_YEAR_FIRST = re.compile(rf"(\d{{4}})([-/])(\d{{1,2}})\2(\d{{1,2}}){_TIME}")
_DAY_FIRST = re.compile(rf"(\d{{1,2}})([./-])(\d{{1,2}})\2(\d{{4}}|\d{{2}}){_TIME}")
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")


def _split_date(text: str) -> tuple[int, int, int, bool] | None:
    """(year, month, day, two_digit_year) of a known format, or None."""
    if match := _YEAR_FIRST.fullmatch(text):
        return int(match[1]), int(match[3]), int(match[4]), False
    if match := _DAY_FIRST.fullmatch(text):
        return int(match[4]), int(match[3]), int(match[1]), len(match[4]) == 2
    if match := _COMPACT.fullmatch(text):
        return int(match[1]), int(match[2]), int(match[3]), False
    return None


def _real_date(text: str, year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise InvalidValue(f"'{text}' is not a real date") from None


def parse_date(text: str | None, *, today: date | None = None) -> date | None:
    """German, ISO and FEBRL spellings of a date; slashes are day-first as in Europe."""
    if text is None or is_missing(text):
        return None
    parts = _split_date(text.strip())
    if parts is None:
        raise InvalidValue(f"'{text}' is not a date in a known format")
    year, month, day, two_digit = parts
    if not two_digit:
        return _real_date(text, year, month, day)
    # "31.12.80": the latest century that does not put the date after today.
    today = today or date.today()
    try:
        result: date | None = date(2000 + year, month, day)
    except ValueError:
        result = None
    if result is None or result > today:
        result = _real_date(text, 1900 + year, month, day)
    return result


def normalise_birth_date(text: str, today: date | None = None) -> str:
    today = today or date.today()
    born = parse_date(text, today=today)
    if born is None:
        raise InvalidValue(f"'{text}' is empty")
    if born > today:
        raise InvalidValue(f"'{text}' is in the future")
    if born.year < EARLIEST_BIRTH_YEAR:
        raise InvalidValue(f"'{text}' is before {EARLIEST_BIRTH_YEAR}")
    return born.isoformat()
