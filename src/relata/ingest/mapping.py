"""Which column of a source file holds which canonical field, and which columns form its key."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from relata.ingest.normalise import (
    CANONICAL_FIELDS,
    IDENTIFYING_FIELDS,
    InvalidValue,
    fold,
    parse_date,
)

# Consent columns: "purpose:channel" = column; the channels of consent.ledger.CHANNELS.
_CONSENT_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}:(email|sms|phone|post|web|push)")
ConsentValue = tuple[bool, date | None]  # granted?, and the day if the column gives one


class MappingError(ValueError):
    """A mapping that cannot be used, or a row it cannot be applied to."""


@dataclass(frozen=True)
class Mapping:
    # Column(s) whose values, joined with "|", key the record; empty: a hash of the content.
    source_key: tuple[str, ...]
    fields: dict[str, str]  # canonical field -> column name
    # "purpose:channel" -> column saying yes/no (or the day it was given); see consent_value.
    consents: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if unknown := [name for name in self.fields if name not in CANONICAL_FIELDS]:
            raise MappingError(
                f"unknown canonical field(s) {', '.join(map(repr, unknown))}; "
                f"known are {', '.join(CANONICAL_FIELDS)}"
            )
        for name, column in self.fields.items():
            if not isinstance(column, str) or not column.strip():
                raise MappingError(f"field '{name}' must name a column, got {column!r}")
        for column in self.source_key:
            if not isinstance(column, str) or not column.strip():
                raise MappingError(f"source_key must name columns, got {column!r}")
        for name, column in self.consents.items():
            if not isinstance(name, str) or not _CONSENT_KEY.fullmatch(name):
                raise MappingError(
                    f"consent {name!r} must be 'purpose:channel', e.g. 'marketing:email'; "
                    "channels are email, sms, phone, post, web, push"
                )
            if not isinstance(column, str) or not column.strip():
                raise MappingError(f"consent '{name}' must name a column, got {column!r}")

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"source_key": list(self.source_key), "fields": dict(self.fields)}
        if self.consents:
            data["consents"] = dict(self.consents)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Mapping:
        if not isinstance(data, dict):
            raise MappingError(f"a mapping must be an object, got {type(data).__name__}")
        if extra := sorted(set(data) - {"source_key", "fields", "consents"}):
            raise MappingError(f"unknown mapping key(s) {', '.join(map(repr, extra))}")
        fields = data.get("fields", {})
        if not isinstance(fields, dict):
            raise MappingError("'fields' must be a table of canonical field = column name")
        consents = data.get("consents", {})
        if not isinstance(consents, dict):
            raise MappingError("'consents' must be a table of 'purpose:channel' = column name")
        return cls(_key_columns(data.get("source_key", ())), dict(fields), dict(consents))


@dataclass(frozen=True, slots=True)
class MappedRow:
    source_key: str
    fields: dict[str, str]  # canonical field -> raw value, not yet normalised
    attributes: dict[str, str]  # every other non-empty column, under its own header
    # "purpose:channel" -> what its column says; consent columns stay attributes too
    consents: dict[str, ConsentValue] = field(default_factory=dict)


def _key_columns(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise MappingError(f"source_key must be a column name or a list of them, got {value!r}")


def load_mapping(path: Path) -> Mapping:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{path}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(f"{path}: cannot read: {exc}") from None
    try:
        return Mapping.from_json(data)
    except MappingError as exc:
        raise MappingError(f"{path}: {exc}") from None


# --- recognising headers --------------------------------------------------------------------

_KEY_HEADERS = (
    "id source_key key record_id rec_id recid kundenid kunden_id customer_id uid user_id "
    "contact_id contactid account_id accountid person_id personid member_id memberid"
)
# A key column with one of these headers is the customer's number too (a CRM's
# "Customer ID"), so it links records like any customer number.
_CUSTOMER_KEY_HEADERS = "kundenid kunden_id customer_id customerid kundennr kundennummer"
_FIELD_HEADERS = {
    "first_name": "vorname firstname first_name givenname given_name forename rufname",
    "last_name": "nachname name lastname last_name surname familienname zuname",
    "birth_date": "geburtsdatum gebdatum geburtstag gebdat dob birthdate birth_date dateofbirth "
    "date_of_birth birthday",
    "email": "email e-mail mail emailadresse e_mail emailaddress",
    "phone": "telefon tel telefonnummer phone phonenumber mobil mobile handy mobilnummer "
    "phone_number telephone mobiltelefon festnetz",
    "street": "strasse straße str street address adresse address_1 address1 anschrift "
    "streetaddress",
    "house_number": "hausnummer hausnr hnr housenumber house_number street_number streetnumber nr",
    "postcode": "plz postleitzahl zip zipcode postcode postalcode postal_code",
    "city": "ort stadt wohnort city town suburb locality",
    "country": "land country countrycode staat",
    "customer_number": "kundennummer kundennr kdnr customernumber customer_number customerno "
    "customer_no accountnumber",
    "loyalty_card": "kundenkarte loyaltycard loyalty_card karte kartennummer cardnumber "
    "card_number payback",
    "gender": "geschlecht gender sex anrede salutation",
    "company": "firma company unternehmen organisation organization firmenname",
}


# Marketing consent per channel, as German and English exports name it (whole headers only).
_CONSENT_HEADERS = {
    "marketing:email": "newsletter newsletteroptin newsletteranmeldung newsletterabo emailoptin "
    "optinemail einwilligungemail emailwerbung werbungemail emailmarketing marketingemail",
    "marketing:sms": "smsoptin optinsms einwilligungsms smswerbung werbungsms smsmarketing",
    "marketing:phone": "telefonoptin phoneoptin einwilligungtelefon telefonwerbung "
    "werbungtelefon phonemarketing",
    "marketing:post": "postoptin einwilligungpost postwerbung werbungpost directmail",
}


def header_key(header: str) -> str:
    """ "E-Mail-Adresse", "e_mail adresse" and "EMailAdresse" all become "emailadresse"."""
    return fold(header).replace(" ", "")


_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
# Too short or too common to recognise inside a longer header ("name_suffix" is no name).
_WHOLE_HEADER_ONLY = frozenset(
    ["name", "nr", "str", "mail", "karte", "land", "ort", "id", "key", "staat", "sex"]
)


def header_words(header: str) -> list[str]:
    """ "Default Address Zip", "res_street_address" and "fullPhoneNumber" as folded words."""
    return fold(_CAMEL.sub(" ", header)).split()


# Trailing words that qualify rather than name a column: "res_city_desc", "gender_code".
_QUALIFIER_WORDS = (
    "desc description code cd lbl label txt text value wert "
    "privat geschaeftlich dienstlich home work primary main"
)
_QUALIFIERS = frozenset(_QUALIFIER_WORDS.split())


def _tail_runs(header: str) -> set[str]:
    """The header's last word, and it read together with the words before it.

    The last word names what a column holds ("full_phone_number" is a phone number);
    earlier words only qualify it ("PhoneService" is a service, "Default Address
    Company" a company).
    """
    words = header_words(header)
    while len(words) > 1 and words[-1] in _QUALIFIERS:
        words.pop()
    return {"".join(words[i:]) for i in range(len(words))}


def _all_runs(header: str) -> set[str]:
    words = header_words(header)
    return {"".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1)}


def _synonym_keys(synonyms: str) -> list[str]:
    return [header_key(s) for s in synonyms.split() if header_key(s) not in _WHOLE_HEADER_ONLY]


def _header_ending_in(synonyms: str, headers: Sequence[str], used: set[str]) -> str | None:
    """The first free column whose header ends in one of the synonyms."""
    tails = {h: _tail_runs(h) for h in headers if h not in used}
    for synonym in _synonym_keys(synonyms):
        for header, runs in tails.items():
            if synonym in runs:
                return header
    return None


def _street_and_number(headers: Sequence[str], used: set[str]) -> str | None:
    """One column for both ("Straße u. Hausnr."): it is the street; normalising splits it."""
    street = set(_synonym_keys(_FIELD_HEADERS["street"]))
    number = set(_synonym_keys(_FIELD_HEADERS["house_number"]))
    for header in headers:
        runs = _all_runs(header)
        if header not in used and runs & street and runs & number:
            return header
    return None


def _first_header(synonyms: str, columns: dict[str, str], used: set[str]) -> str | None:
    """The first column, in order of the synonyms, whose header is one of them and still free."""
    for synonym in synonyms.split():
        column = columns.get(header_key(synonym))
        if column is not None and column not in used:
            return column
    return None


def guess_mapping(headers: Sequence[str]) -> Mapping:
    """A mapping from well-known German and English headers; unknown columns stay attributes.

    A header that is exactly a known name wins; failing that, one that contains it as
    words ("Default Address Zip", "res_city_desc"), so the exports of shop systems,
    newsletter tools and registers map without a mapping file.
    """
    columns: dict[str, str] = {}
    for header in headers:
        columns.setdefault(header_key(header), header)  # the first of two look-alikes wins
    used: set[str] = set()
    key = _first_header(_KEY_HEADERS, columns, used)
    if key is not None:
        used.add(key)
    # Before the fields: "Werbung E-Mail" is a consent, not an e-mail address.
    consents: dict[str, str] = {}
    for name, synonyms in _CONSENT_HEADERS.items():
        if (column := _first_header(synonyms, columns, used)) is not None:
            consents[name] = column
            used.add(column)
    fields: dict[str, str] = {}
    for name, synonyms in _FIELD_HEADERS.items():
        if (column := _first_header(synonyms, columns, used)) is not None:
            fields[name] = column
            used.add(column)
    if "street" not in fields and (column := _street_and_number(headers, used)):
        fields["street"] = column
        used.add(column)
    for name, synonyms in _FIELD_HEADERS.items():
        if name not in fields and (column := _header_ending_in(synonyms, headers, used)):
            fields[name] = column
            used.add(column)
    if key is None and "customer_number" in fields:
        key = fields["customer_number"]
    elif (
        key is not None
        and "customer_number" not in fields
        and header_key(key) in {header_key(s) for s in _CUSTOMER_KEY_HEADERS.split()}
    ):
        fields["customer_number"] = key
    return Mapping((key,) if key else (), fields, consents)


# --- applying a mapping ---------------------------------------------------------------------


def content_key(row: dict[str, str]) -> str:
    """A key from the row's content, so that importing the same file twice stores it once.

    Empty columns are left out: a file exported again with an extra empty column keeps its keys.
    """
    content = {column: value.strip() for column, value in row.items() if value and value.strip()}
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return "sha1:" + hashlib.sha1(canonical.encode("utf-8")).hexdigest()


def _source_key(mapping: Mapping, row: dict[str, str]) -> str:
    if not mapping.source_key:
        return content_key(row)
    parts = []
    for column in mapping.source_key:
        if column not in row:
            raise MappingError(f"source key column '{column}' is not in the row")
        if not (value := (row[column] or "").strip()):
            raise MappingError(f"empty source key column '{column}'")
        parts.append(value)
    return "|".join(parts)


_YES = frozenset(
    [
        "ja",
        "j",
        "yes",
        "y",
        "true",
        "wahr",
        "1",
        "x",
        "✓",
        "✔",
        "optin",
        "opt-in",
        "granted",
        "erteilt",
        "eingewilligt",
        "angemeldet",
        "subscribed",
    ]
)
_NO = frozenset(
    [
        "nein",
        "n",
        "no",
        "false",
        "falsch",
        "0",
        "optout",
        "opt-out",
        "revoked",
        "widerrufen",
        "abgemeldet",
        "unsubscribed",
    ]
)


def consent_value(text: str) -> ConsentValue | None:
    """A consent column's value: yes/no in German or English, or the day it was given.

    Empty is no statement (None). Anything else raises: a guessed consent is worse than
    a quarantined row.
    """
    value = text.strip().lower()
    if not value:
        return None
    if value in _YES:
        return True, None
    if value in _NO:
        return False, None
    try:
        given = parse_date(value.replace("t", " ").split(" ")[0])
    except InvalidValue:
        given = None
    if given is None:
        raise MappingError(f"'{text.strip()[:40]}' is neither yes/no nor a date")
    return True, given


def apply_mapping(mapping: Mapping, row: dict[str, str]) -> MappedRow:
    fields: dict[str, str] = {}
    for name, column in mapping.fields.items():
        if column not in row:
            raise MappingError(f"column '{column}' (mapped to {name}) is not in the row")
        if (value := row[column]) and value.strip():
            fields[name] = value
    mapped = set(mapping.fields.values())
    attributes = {
        column: value
        for column, value in row.items()
        if column not in mapped and value and value.strip()
    }
    consents: dict[str, ConsentValue] = {}
    for name, column in mapping.consents.items():
        if column not in row:
            raise MappingError(f"column '{column}' (consent {name}) is not in the row")
        try:
            said = consent_value(row[column] or "")
        except MappingError as exc:
            raise MappingError(f"consent column '{column}': {exc}") from None
        if said is not None:
            consents[name] = said
    return MappedRow(_source_key(mapping, row), fields, attributes, consents)


def mapping_problems(mapping: Mapping, headers: Sequence[str]) -> list[str]:
    """What stops this mapping from working on a file with these headers, one line each."""
    present = set(headers)
    problems = [
        f"source key column '{column}' is not in the file"
        for column in mapping.source_key
        if column not in present
    ]
    problems += [
        f"column '{column}' (mapped to {name}) is not in the file"
        for name, column in mapping.fields.items()
        if column not in present
    ]
    problems += [
        f"column '{column}' (consent {name}) is not in the file"
        for name, column in mapping.consents.items()
        if column not in present
    ]
    if not any(name in mapping.fields for name in IDENTIFYING_FIELDS):
        problems.append(
            "no name or identifier is mapped (one of "
            + ", ".join(IDENTIFYING_FIELDS)
            + "): every row would be quarantined"
        )
    return problems
