"""What matching compares: a customer's fields turned into keys that German spellings meet on.

Pure, no I/O. Batch matching (Splink) and real-time matching (Python) both compare these
features, so both see "Jürgen Müller, Hauptstr. 5a" and "Juergen Muller, Hauptstrasse 5"
the same way. Every value is a string, a bool, a tuple of strings or None (missing).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, NamedTuple

import cologne_phonetics
from nicknames import NickNamer

from relata.identity.linking import household_address
from relata.ingest.normalise import fold

# Fields of a customer (golden record or source record) that matching reads.
FIELDS = (
    "first_name",
    "last_name",
    "birth_date",
    "gender",
    "email",
    "phone",
    "street",
    "house_number",
    "postcode",
    "city",
)
# A key shared by more records than this is a switchboard, a placeholder or "info@": it
# would make blocks of millions of pairs and says nothing about who someone is.
MAX_BLOCK = 200
_CACHE = 200_000


class Features(NamedTuple):
    forename: str | None  # folded: "juergen"
    surname: str | None
    forename_sk: str | None  # skeleton: umlaut spellings and doubled letters collapsed
    surname_sk: str | None
    forename_ph: str | None  # Kölner Phonetik code(s)
    surname_ph: str | None
    forename_tokens: tuple[str, ...]  # parts of a double first name
    forename_alias: tuple[str, ...]  # those parts and the names they are short for
    surname_tokens: tuple[str, ...]  # tokens of a double surname
    dob: str | None  # ISO date
    dob_swapped: str | None  # day and month exchanged, where that is a date too
    gender: str | None
    email: str | None
    email_local: str | None  # local part without dots, dashes and underscores
    email_household: bool  # "familie.mueller@…": a family shares it
    phone: str | None  # E.164
    phone_mobile: bool
    street: str | None  # folded, without spaces, "straße"/"strasse"/"str." as "str"
    hnr: str | None  # "5a"
    hnr_base: str | None  # "5"
    postcode: str | None
    postcode3: str | None
    city: str | None
    # Blocking keys: records are compared when one of these is equal.
    k_name: str | None  # both names' phonetic codes, sorted (so swapped names meet)
    k_dob_first: str | None
    k_dob_last: str | None
    k_addr: str | None
    k_email: str | None
    k_phone: str | None


COLUMNS: tuple[str, ...] = Features._fields
BLOCKING_KEYS: tuple[str, ...] = tuple(c for c in COLUMNS if c.startswith("k_"))
LIST_COLUMNS = frozenset({"forename_tokens", "forename_alias", "surname_tokens"})
BOOL_COLUMNS = frozenset({"email_household", "phone_mobile"})

_UMLAUT_SPELLING = re.compile(r"(?<=[aou])e")
_DOUBLE = re.compile(r"(.)\1+")
_STREET_WORD = re.compile(r"(?:strasse|str)(?=\s|$)")
_LEADING_DIGITS = re.compile(r"^\d+")
_EMAIL_SEPARATORS = re.compile(r"[._\-+]")
# Mobile prefixes of the countries relata's users are in; elsewhere a number is not
# known to be mobile, which only means its exact match weighs like a landline's.
_MOBILE = ("+4915", "+4916", "+4917", "+436", "+417")
_nicknames = NickNamer()


def _text(value: Any) -> str | None:
    if not value:
        return None
    text = (value if type(value) is str else str(value)).strip()
    return text or None


@lru_cache(maxsize=_CACHE)
def name_key(name: str) -> str | None:
    return fold(name) or None


@lru_cache(maxsize=_CACHE)
def skeleton(key: str) -> str:
    """ "mueller" and "muller" → "muler": ü/ue/u, doubled letters, ph/f, y/i meet."""
    key = _UMLAUT_SPELLING.sub("", key).replace("ph", "f").replace("y", "i")
    return _DOUBLE.sub(r"\1", key)


@lru_cache(maxsize=_CACHE)
def phonetic(key: str) -> str | None:
    """Kölner Phonetik of each word: "meier", "mayer" and "maier" are all "67"."""
    codes = [code for _, code in cologne_phonetics.encode(key) if code]
    return " ".join(codes) or None


@lru_cache(maxsize=_CACHE)
def first_aliases(key: str) -> tuple[str, ...]:
    """The tokens of a first name and the full names they may be short for.

    "anna maria" → anna, maria; "alex" → alex, alexander, alexandra, …; so a double name
    meets either of its parts and a nickname meets its name. The nickname list is the
    ``nicknames`` package's (English-language: it knows Alex and Tom, not Basti or Steffi).
    """
    aliases: set[str] = set()
    for token in key.split():
        if len(token) > 1:
            aliases.add(token)
            aliases.update(_nicknames.canonicals_of(token))
    return tuple(sorted(aliases))


@lru_cache(maxsize=_CACHE)
def last_tokens(key: str) -> tuple[str, ...]:
    """Parts of a double surname ("mueller luedenscheidt"); particles like "von" left out."""
    return tuple(sorted({t for t in key.split() if len(t) > 2 and t not in _PARTICLES}))


_PARTICLES = frozenset({"von", "vom", "van", "der", "den", "dem", "des", "zu", "zum", "zur"})


def swapped_date(iso: str) -> str | None:
    """1980-03-07 → 1980-07-03: the date as someone who swapped day and month typed it."""
    year, month, day = iso[:4], iso[5:7], iso[8:10]
    if day == month or int(day) > 12:
        return None
    return f"{year}-{day}-{month}"


@lru_cache(maxsize=_CACHE)
def street_key(street: str) -> str | None:
    """ "Hauptstraße", "Hauptstr.", "Haupt-Strasse" → "hauptstr"."""
    return _STREET_WORD.sub("str", fold(street)).replace(" ", "") or None


def email_local(address: str) -> str | None:
    local = address.partition("@")[0].lower()
    return _EMAIL_SEPARATORS.sub("", local) or None


def _join(*parts: str | None) -> str | None:
    return "|".join(parts) if all(parts) else None  # type: ignore[arg-type]


@lru_cache(maxsize=_CACHE)
def _first_parts(raw: str) -> tuple[Any, ...]:
    key = name_key(raw)
    if not key:
        return (None, None, None, (), ())
    tokens = tuple(sorted(set(key.split())))
    return (key, skeleton(key), phonetic(key), tokens, first_aliases(key))


@lru_cache(maxsize=_CACHE)
def _last_parts(raw: str) -> tuple[Any, ...]:
    key = name_key(raw)
    if not key:
        return (None, None, None, ())
    return (key, skeleton(key), phonetic(key), last_tokens(key))


@lru_cache(maxsize=_CACHE)
def _house_number(raw: str) -> tuple[str, str]:
    hnr = raw.lower().replace(" ", "")
    base = _LEADING_DIGITS.match(hnr)
    return hnr, base[0] if base else hnr


@lru_cache(maxsize=_CACHE)
def _date(raw: str) -> tuple[str, str | None]:
    dob = raw[:10]
    return dob, swapped_date(dob)


_NO_FIRST: tuple[Any, ...] = (None, None, None, (), ())
_NO_LAST: tuple[Any, ...] = (None, None, None, ())


def features(data: Mapping[str, Any]) -> Features:
    """The features of one record or golden record (canonical field → value)."""
    get = data.get
    raw = _text(get("first_name"))
    first, first_sk, first_ph, first_tokens, aliases = _first_parts(raw) if raw else _NO_FIRST
    raw = _text(get("last_name"))
    last, last_sk, last_ph, surname_tokens = _last_parts(raw) if raw else _NO_LAST
    raw = _text(get("birth_date"))
    dob, dob_swapped = _date(raw) if raw else (None, None)
    email = _text(get("email"))
    email = email.lower() if email else None
    local = email_local(email) if email else None
    phone = _text(get("phone"))
    street = _text(get("street"))
    skey = street_key(street) if street else None
    raw = _text(get("house_number"))
    hnr, hnr_base = _house_number(raw) if raw else (None, None)
    postcode = _text(get("postcode"))
    city = _text(get("city"))
    gender = _text(get("gender"))
    return Features(
        forename=first,
        surname=last,
        forename_sk=first_sk,
        surname_sk=last_sk,
        forename_ph=first_ph,
        surname_ph=last_ph,
        forename_tokens=first_tokens,
        forename_alias=aliases,
        surname_tokens=surname_tokens,
        dob=dob,
        dob_swapped=dob_swapped,
        gender=gender.lower() if gender else None,
        email=email,
        email_local=local,
        email_household=bool(email and household_address("email", email)),
        phone=phone,
        phone_mobile=bool(phone and phone.startswith(_MOBILE)),
        street=skey,
        hnr=hnr,
        hnr_base=hnr_base,
        postcode=postcode,
        postcode3=postcode[:3] if postcode and len(postcode) >= 4 else None,
        city=name_key(city) if city else None,
        k_name="|".join(sorted((first_ph, last_ph))) if first_ph and last_ph else None,
        k_dob_first=_join(dob, first_ph),
        k_dob_last=_join(dob, last_ph),
        k_addr=_join(postcode, skey, hnr_base),
        # A short local part ("info", "kontakt") is shared by strangers at other domains.
        k_email=local if local and len(local) >= 6 and not local.isdigit() else None,
        k_phone=phone,
    )


def has_keys(f: Features) -> bool:
    return bool(f.k_name or f.k_dob_first or f.k_dob_last or f.k_addr or f.k_email or f.k_phone)


def keys_of(f: Features) -> list[str]:
    """The blocking keys of a record as one namespace: "k_name=…", "k_phone=…"."""
    return [f"{name}={value}" for name in BLOCKING_KEYS if (value := getattr(f, name))]


def key_hash(key: str) -> int:
    """A blocking key as a signed 64-bit integer, for a small index."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)
