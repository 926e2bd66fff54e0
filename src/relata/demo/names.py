"""Names, e-mail addresses and telephone numbers of synthetic German customers.

Faker's de_DE name lists are uniform: "Abbas" is as likely as "Thomas", which gives far
too few of the common-name collisions (two different Thomas Müllers) that make matching
hard. So a share of draws comes from short head lists of the most frequent surnames and
of the most frequent first names of the person's birth cohort; the long tail is Faker's.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from functools import cache
from itertools import accumulate

from faker import Faker

# fmt: off
COMMON_LAST_NAMES = (
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
    "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann",
    "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt",
    "Werner", "Schmitz", "Krause", "Meier", "Lehmann", "Schmid", "Schulze", "Maier", "Köhler",
    "Herrmann", "König", "Walter", "Mayer", "Huber", "Kaiser", "Fuchs", "Peters", "Lang",
    "Scholz", "Möller", "Weiß", "Jung", "Hahn", "Schubert",
)

# Most frequent first names by birth cohort: (born before, male names, female names).
_COHORTS = (
    (1950,
     ("Hans", "Karl", "Heinz", "Werner", "Günter", "Walter", "Helmut", "Gerhard", "Horst", "Kurt"),
     ("Ursula", "Helga", "Gisela", "Ingrid", "Renate", "Karin", "Hildegard", "Erika", "Gertrud",
      "Christa")),
    (1970,
     ("Peter", "Klaus", "Wolfgang", "Jürgen", "Dieter", "Manfred", "Uwe", "Bernd", "Rainer",
      "Michael"),
     ("Sabine", "Monika", "Petra", "Birgit", "Gabriele", "Andrea", "Angelika", "Brigitte",
      "Susanne", "Martina")),
    (1985,
     ("Thomas", "Michael", "Andreas", "Stefan", "Frank", "Markus", "Christian", "Oliver",
      "Matthias", "Sven"),
     ("Stefanie", "Nicole", "Sandra", "Claudia", "Anja", "Melanie", "Katrin", "Tanja", "Julia",
      "Silke")),
    (2000,
     ("Daniel", "Christian", "Sebastian", "Jan", "Dennis", "Tobias", "Florian", "Alexander",
      "Philipp", "Patrick"),
     ("Julia", "Katharina", "Sarah", "Lisa", "Anna", "Laura", "Christina", "Jennifer", "Jessica",
      "Vanessa")),
    (9999,
     ("Lukas", "Leon", "Jonas", "Tim", "Niklas", "Luca", "Finn", "Paul", "Felix", "Maximilian"),
     ("Lea", "Anna", "Lena", "Hannah", "Sophie", "Marie", "Laura", "Lara", "Emily", "Leonie")),
)
# fmt: on

NICKNAMES = {
    "Alexander": "Alex",
    "Maximilian": "Max",
    "Christian": "Chris",
    "Katharina": "Kathi",
    "Stefanie": "Steffi",
    "Thomas": "Tom",
    "Michael": "Micha",
    "Sebastian": "Basti",
    "Tobias": "Tobi",
    "Susanne": "Susi",
    "Gabriele": "Gabi",
    "Daniel": "Dani",
    "Christina": "Tina",
    "Matthias": "Matze",
    "Jennifer": "Jenny",
    "Elisabeth": "Lisa",
    "Johannes": "Hannes",
    "Wolfgang": "Wolle",
}

# Share of draws from the head lists above; the rest comes from Faker.
# Müller comes out near its real 0.8 %, Schmidt near 0.5 %.
_HEAD_SHARE_LAST = 0.08
_HEAD_SHARE_FIRST = 0.3
_LAST_CUM = tuple(accumulate(1 / (rank + 1) ** 0.7 for rank in range(len(COMMON_LAST_NAMES))))

EMAIL_PROVIDERS = (
    ("web.de", 20),
    ("gmx.de", 17),
    ("gmail.com", 18),
    ("t-online.de", 11),
    ("outlook.de", 5),
    ("hotmail.de", 4),
    ("yahoo.de", 5),
    ("gmx.net", 4),
    ("icloud.com", 4),
    ("posteo.de", 3),
    ("freenet.de", 3),
    ("aol.com", 2),
    ("mail.de", 2),
    ("online.de", 2),
)
_PROVIDER_NAMES = tuple(name for name, _ in EMAIL_PROVIDERS)
_PROVIDER_CUM = tuple(accumulate(weight for _, weight in EMAIL_PROVIDERS))

_UMLAUTS = str.maketrans(
    {"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"}
)


# The long tail: every surname Faker knows for Germany, Austria and Switzerland, and, for
# the quarter of Germany's people with a family history of migration, Italian, Croatian,
# Turkish, Czech and Dutch ones. Drawn with Zipf-like weights (rank order shuffled once,
# with a fixed seed), so a few tail names are common and most are rare, as in a real
# customer base; a uniform draw from Faker's 406 German names made every one of them as
# frequent as Müller.
_GERMAN_LOCALES = ("de_DE", "de_AT", "de_CH")
_MIGRANT_LOCALES = ("it_IT", "hr_HR", "tr_TR", "cs_CZ", "nl_NL")
_MIGRANT_SHARE = 0.15


def _surnames(locales: tuple[str, ...]) -> list[str]:
    import importlib

    names: set[str] = set()
    for locale in locales:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        found = provider.last_names
        names.update(found.keys() if isinstance(found, dict) else found)
    ordered = sorted(n for n in names if n not in COMMON_LAST_NAMES and " " not in n)
    random.Random(0).shuffle(ordered)
    return ordered


@cache
def _tail(locales: tuple[str, ...]) -> tuple[list[str], list[float]]:
    names = _surnames(locales)
    return names, list(accumulate(1 / (rank + 10) for rank in range(len(names))))


def last_name(fake: Faker, rng: random.Random) -> str:
    if rng.random() < _HEAD_SHARE_LAST:
        return rng.choices(COMMON_LAST_NAMES, cum_weights=_LAST_CUM)[0]
    locales = _MIGRANT_LOCALES if rng.random() < _MIGRANT_SHARE else _GERMAN_LOCALES
    names, cum = _tail(locales)
    return rng.choices(names, cum_weights=cum)[0]


def first_name(fake: Faker, rng: random.Random, gender: str, born: int) -> str:
    if rng.random() < _HEAD_SHARE_FIRST:
        cohort = next(c for c in _COHORTS if born < c[0])
        return rng.choice(cohort[1] if gender == "m" else cohort[2])
    return fake.first_name_male() if gender == "m" else fake.first_name_female()


def transliterate(text: str) -> str:
    """German spelling without umlauts and ß, as old systems and e-mail addresses have it."""
    return text.translate(_UMLAUTS)


def ascii_slug(text: str) -> str:
    """Lower-case ASCII letters, digits and hyphens of a name, for an e-mail local part."""
    folded = unicodedata.normalize("NFKD", transliterate(text).lower())
    return "".join(c for c in folded if c.isascii() and (c.isalnum() or c == "-"))


def provider(rng: random.Random) -> str:
    return rng.choices(_PROVIDER_NAMES, cum_weights=_PROVIDER_CUM)[0]


def personal_local_part(rng: random.Random, first: str, last: str, born: int) -> str:
    f, la = ascii_slug(first), ascii_slug(last)
    patterns = (
        f"{f}.{la}",
        f"{f}.{la}",
        f"{f}{la}",
        f"{f[:1]}.{la}",
        f"{f}_{la}",
        f"{la}.{f}",
        f"{f}.{la}{born % 100:02d}",
        f"{f}{born}",
        f"{f[:1]}{la}{rng.randint(1, 99)}",
    )
    return rng.choice(patterns)


def family_local_part(rng: random.Random, last: str, firsts: list[str]) -> str:
    la = ascii_slug(last)
    patterns = (
        f"familie.{la}",
        f"familie.{la}",
        f"fam.{la}",
        f"{la}.familie",
        f"familie-{la}",
        "".join(ascii_slug(f)[:1] for f in firsts) + f".{la}",
    )
    return rng.choice(patterns)


class EmailRegistry:
    """Hands out e-mail addresses that no other person or household already uses."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[str] = set()

    def claim(self, local: str) -> str:
        domain = provider(self._rng)
        address = f"{local}@{domain}"
        while address in self._used:
            address = f"{local}{self._rng.randint(1, 999)}@{domain}"
        self._used.add(address)
        return address


@dataclass(frozen=True, slots=True)
class Phone:
    """A telephone number in parts: country code, area or mobile prefix (no trunk 0)."""

    country: str
    area: str
    number: str
    mobile: bool


# fmt: off
_DE_MOBILE = ("151", "152", "157", "159", "160", "162", "163", "170", "171", "172", "173", "174",
              "175", "176", "177", "178", "179")
_DE_AREAS = ("30", "40", "89", "69", "221", "211", "711", "341", "351", "511", "911", "231", "201",
             "421", "228", "621", "721", "761", "531", "251", "371", "2151", "2361", "3301",
             "3641", "4101", "5121", "6131", "6221", "7031", "8031", "9131", "4521", "2602",
             "7121", "8151", "9321", "3946")
# fmt: on
_FOREIGN = {
    "AT": ("43", ("664", "660", "676", "699"), ("1", "316", "732", "662", "512")),
    "CH": ("41", ("76", "78", "79"), ("44", "61", "31", "41", "71")),
}


def _digits(rng: random.Random, n: int) -> str:
    return str(rng.randrange(10 ** (n - 1), 10**n))


def mobile_phone(rng: random.Random, country: str = "DE") -> Phone:
    if country in _FOREIGN:
        code, prefixes, _ = _FOREIGN[country]
        return Phone(code, rng.choice(prefixes), _digits(rng, 7), True)
    prefix = rng.choice(_DE_MOBILE)
    return Phone("49", prefix, _digits(rng, 8 if prefix.startswith("15") else 7), True)


def landline_phone(rng: random.Random, country: str = "DE") -> Phone:
    if country in _FOREIGN:
        code, _, areas = _FOREIGN[country]
        area = rng.choice(areas)
    else:
        code, area = "49", rng.choice(_DE_AREAS)
    length = rng.randint(max(4, 9 - len(area)), 10 - len(area))
    return Phone(code, area, _digits(rng, length), False)


PHONE_STYLES = ("space", "intl", "slash", "paren", "dash", "plain", "intl_plain", "double_zero")


def format_phone(phone: Phone, style: str) -> str:
    """One of the ways Germans write the same number."""
    a, n, cc = phone.area, phone.number, phone.country
    formats = {
        "space": f"0{a} {n}",
        "intl": f"+{cc} {a} {n}",
        "slash": f"0{a}/{n}",
        "paren": f"(0{a}) {n}",
        "dash": f"0{a}-{n}",
        "plain": f"0{a}{n}",
        "intl_plain": f"+{cc}{a}{n}",
        "double_zero": f"00{cc} {a} {n}",
    }
    return formats[style]
