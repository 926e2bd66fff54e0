"""The mistakes real source systems make, applied at seeded random and counted.

Each source has its own rates (:data:`RATES`): cashiers type in capitals, hotline agents
mishear names, newsletter forms leave names empty. ``Dirt.stats`` counts what was done,
per source and kind, so a benchmark can say how dirty the data it ran on was.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import date

from relata.demo import names
from relata.demo.names import Phone

RATES: dict[str, dict[str, float]] = {
    "shop": {
        "typo": 0.01,
        "translit": 0.01,
        "upper": 0.005,
        "swap": 0.003,
        "nickname": 0.0,
        "no_phone": 0.3,
        "no_birth_date": 0.3,
        "no_email": 0.01,
        "email_case": 0.03,
        "birth_date_swap": 0.005,
        "birth_date_typo": 0.003,
        "street_abbrev": 0.15,
        "house_number_suffix": 0.02,
        "old_address": 0.3,
    },
    "pos": {
        "typo": 0.03,
        "translit": 0.08,
        "upper": 0.15,
        "swap": 0.04,
        "nickname": 0.0,
        "no_phone": 0.45,
        "no_birth_date": 0.15,
        "birth_date_swap": 0.01,
        "birth_date_typo": 0.01,
        "street_abbrev": 0.5,
        "house_number_suffix": 0.05,
        "old_address": 0.65,
        "plz_no_zero": 0.5,
    },
    "newsletter": {
        "typo": 0.01,
        "translit": 0.01,
        "upper": 0.01,
        "swap": 0.01,
        "nickname": 0.05,
        "no_name": 0.5,
        "lower": 0.1,
        "email_case": 0.05,
    },
    "hotline": {
        "typo": 0.06,
        "translit": 0.04,
        "upper": 0.02,
        "swap": 0.03,
        "nickname": 0.03,
        "no_phone": 0.12,
        "no_name": 0.04,
    },
    "coupon": {
        "typo": 0.05,
        "translit": 0.03,
        "upper": 0.05,
        "swap": 0.02,
        "nickname": 0.04,
        "no_name": 0.1,
        "no_email": 0.3,
        "email_case": 0.05,
        "lower": 0.03,
    },
}
INVALID_SHARE = 0.001  # of a source's rows, per kind of row an importer must refuse

# How each source tends to write a telephone number: style -> weight.
PHONE_HABITS = {
    "shop": {style: 1.0 for style in names.PHONE_STYLES},
    "pos": {"slash": 6.0, "space": 2.0, "plain": 1.0, "paren": 1.0},
    "hotline": {"plain": 6.0, "intl_plain": 3.0, "space": 1.0},
    "web": {"space": 1.0},
}


class Dirt:
    """Seeded mistakes for one source."""

    def __init__(self, rng: random.Random, source: str, stats: Counter[tuple[str, str]]) -> None:
        self.rng = rng
        self.source = source
        self.rates = RATES.get(source, {})
        self.stats = stats

    def hit(self, kind: str) -> bool:
        """True (and counted) at this source's rate for ``kind``."""
        if self.rng.random() < self.rates.get(kind, 0.0):
            self.count(kind)
            return True
        return False

    def count(self, kind: str) -> None:
        self.stats[(self.source, kind)] += 1

    def name(self, first: str, last: str) -> tuple[str, str]:
        if first in names.NICKNAMES and self.hit("nickname"):
            first = names.NICKNAMES[first]
        if self.hit("typo"):
            if self.rng.random() < 0.5:
                first = typo(self.rng, first)
            else:
                last = typo(self.rng, last)
        if _has_umlaut(first + last) and self.hit("translit"):
            first, last = names.transliterate(first), names.transliterate(last)
        if self.hit("upper"):
            first, last = first.upper(), last.upper()
        elif self.hit("lower"):
            first, last = first.lower(), last.lower()
        if self.hit("swap"):
            first, last = last, first
        return first, last

    def email(self, address: str | None) -> str | None:
        if address is None or self.hit("no_email"):
            return None
        if self.hit("email_case"):
            return _recase_email(self.rng, address)
        return address

    def phone(self, phone: Phone | None) -> str:
        if phone is None or self.hit("no_phone"):
            return ""
        habits = PHONE_HABITS.get(self.source, PHONE_HABITS["shop"])
        style = self.rng.choices(list(habits), list(habits.values()))[0]
        return names.format_phone(phone, style)

    def birth_date(self, born: date) -> date | None:
        if self.hit("no_birth_date"):
            return None
        if born.day <= 12 and born.day != born.month and self.hit("birth_date_swap"):
            return born.replace(day=born.month, month=born.day)
        if born.day < 28 and self.hit("birth_date_typo"):  # one digit of the day mistyped
            return born.replace(day=born.day + 1 if born.day % 10 != 9 else born.day - 1)
        return born

    def house_number(self, number: str) -> str:
        """ "5a" written as "5", or "5" as "5a": the suffix is the first thing to go wrong."""
        if not self.hit("house_number_suffix"):
            return number
        return number.rstrip("abc") if number[-1:].isalpha() else number + "a"

    def street(self, street: str) -> str:
        variant = abbreviate_street(self.rng, street)
        if variant != street and self.hit("street_abbrev"):
            return variant
        return street


def _has_umlaut(text: str) -> bool:
    return any(c in "äöüÄÖÜß" for c in text)


def typo(rng: random.Random, word: str) -> str:
    """Swap two neighbouring letters, drop one, or double one (never the first)."""
    if len(word) < 3:
        return word
    i = rng.randrange(1, len(word) - 1)
    op = rng.randrange(3)
    if op == 0 and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if op == 1:
        return word[:i] + word[i] + word[i:]
    return word[:i] + word[i + 1 :]


def abbreviate_street(rng: random.Random, street: str) -> str:
    """ "Hauptstraße" as "Hauptstr." or "Hauptstrasse"; other streets unchanged."""
    for long, shorts in (("straße", ("str.", "strasse", "str")), ("Straße", ("Str.", "Strasse"))):
        if street.endswith(long):
            return street[: -len(long)] + rng.choice(shorts)
    return street


def _recase_email(rng: random.Random, address: str) -> str:
    if rng.random() < 0.3:
        return address.upper()
    local, _, domain = address.partition("@")
    parts = [part.capitalize() for part in local.split(".")]
    return ".".join(parts) + "@" + domain.capitalize()


def invalid_count(rows: int) -> int:
    """How many rows of a source are made unacceptable: a handful, at least one."""
    return max(1, round(rows * INVALID_SHARE)) if rows >= 20 else 0
