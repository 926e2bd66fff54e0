"""One raw record to canonical values: which invalid value rejects the row."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import phonenumbers

from relata.ingest.normalise.address import (
    _without_float_suffix,
    normalise_country,
    normalise_house_number,
    normalise_postcode,
    normalise_street,
    split_street,
)
from relata.ingest.normalise.base import (
    _CANONICAL_SET,
    DROPPABLE_FIELDS,
    IDENTIFYING_FIELDS,
    InvalidValue,
    Normalised,
    fold,
    is_missing,
)
from relata.ingest.normalise.contact import normalise_email, normalise_phone
from relata.ingest.normalise.dates import normalise_birth_date
from relata.ingest.normalise.names import normalise_name

_GENDERS = {
    "m": ("m", "male", "maennlich", "maennl", "mann", "herr", "hr", "mr"),
    "f": ("f", "w", "female", "weiblich", "weibl", "frau", "fr", "mrs", "ms", "miss"),
    "d": ("d", "divers", "diverse", "x", "non binary", "nonbinary"),
}
_GENDER_BY_WORD = {word: code for code, words in _GENDERS.items() for word in words}


def normalise_gender(text: str) -> str:
    if code := _GENDER_BY_WORD.get(fold(text)):
        return code
    raise InvalidValue(f"'{text}' is not a recognised gender")


def normalise_identifier(text: str) -> str:
    """Customer and card numbers: no inner spaces, no ".0" a spreadsheet added to a number."""
    return _without_float_suffix("".join(text.split()))


# --- the record -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Context:
    country: str | None
    region: str
    today: date

    @property
    def phone_region(self) -> str:
        # A number written nationally ("0664 …") belongs to the customer's country, if known.
        if self.country and self.country in phonenumbers.SUPPORTED_REGIONS:
            return self.country
        return self.region


_NORMALISERS: dict[str, Callable[[str, _Context], str]] = {
    "first_name": lambda v, _: normalise_name(v, "first_name"),
    "last_name": lambda v, _: normalise_name(v, "last_name"),
    "company": lambda v, _: normalise_name(v, "company"),
    "city": lambda v, _: normalise_name(v, "city"),
    "birth_date": lambda v, ctx: normalise_birth_date(v, ctx.today),
    "email": lambda v, _: normalise_email(v),
    "phone": lambda v, ctx: normalise_phone(v, ctx.phone_region),
    # Without a country, the region a company mostly serves (DE: "1067" lost its zero).
    "postcode": lambda v, ctx: normalise_postcode(v, ctx.country or ctx.region),
    "gender": lambda v, _: normalise_gender(v),
    "customer_number": lambda v, _: normalise_identifier(v),
    "loyalty_card": lambda v, _: normalise_identifier(v),
}


def _address(street: str | None, number: str | None) -> dict[str, str]:
    if street and not number:
        street, number = split_street(street)
    result = {"street": normalise_street(street)} if street else {}
    if number and (house_number := normalise_house_number(number)):
        result["house_number"] = house_number
    return result


def _attempt(
    field: str, value: str, normalise: Callable[[str], str], problems: dict[str, str]
) -> str | None:
    """The normalised value; or None after noting a droppable problem; or raise for quarantine."""
    try:
        return normalise(value)
    except InvalidValue as exc:
        if field not in DROPPABLE_FIELDS:
            raise InvalidValue(f"{field} {exc}") from None
        problems[field] = f"{field} {exc}; value dropped"
        return None


def normalise_record(
    fields: dict[str, str | None],
    *,
    region: str = "DE",
    today: date | None = None,
    require_identity: bool = True,
) -> Normalised:
    """Normalise one mapped row; raises InvalidValue when the row must go to quarantine.

    `require_identity=False` is for traits of a customer known by other means (an event's
    user id), where a row without name or identifier is still worth keeping.
    """
    if not fields.keys() <= _CANONICAL_SET:
        unknown = ", ".join(sorted(fields.keys() - _CANONICAL_SET))
        raise ValueError(f"unknown canonical fields: {unknown}")
    raw = {field: value.strip() for field, value in fields.items() if not is_missing(value)}
    data: dict[str, str] = {}
    problems: dict[str, str] = {}
    # Country first: postcode and phone read it.
    country = (
        _attempt("country", raw["country"], normalise_country, problems)
        if "country" in raw
        else None
    )
    ctx = _Context(country, region, today or date.today())
    for field, normaliser in _NORMALISERS.items():
        if (value := raw.get(field)) is not None:
            result = _attempt(field, value, lambda v, n=normaliser: n(v, ctx), problems)
            if result is not None:
                data[field] = result
    if country:
        data["country"] = country
    data |= _address(raw.get("street"), raw.get("house_number"))
    if require_identity and not any(field in data for field in IDENTIFYING_FIELDS):
        raise InvalidValue(
            "no usable identifier or name: none of " + ", ".join(IDENTIFYING_FIELDS) + " is valid"
        )
    dropped = {field: raw[field] for field in problems}
    return Normalised(data, dropped, tuple(problems.values()))
