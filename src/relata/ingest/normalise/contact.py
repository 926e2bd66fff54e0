"""E-mail addresses and phone numbers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import PhoneMetadata, ValidationResult

from relata.ingest.normalise.base import _CACHE_SIZE, InvalidValue

# --- e-mail ---------------------------------------------------------------------------------

_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
# The common case only; whatever this does not match is decided by email_validator.
_PLAIN_EMAIL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+[a-z]{{2,63}}")
_SPECIAL_TLDS = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})
_DISPLAY_NAME = re.compile(r"^[^<>]*<([^<>]*)>$")


def _is_plain_email(address: str) -> bool:
    local, _, domain = address.partition("@")
    return (
        _PLAIN_EMAIL.fullmatch(address) is not None
        and len(local) <= 64
        and len(address) <= 254
        and "--" not in domain  # IDNA rules for "xn--" and friends: leave to the validator
        and domain.rpartition(".")[2] not in _SPECIAL_TLDS
    )


@lru_cache(maxsize=_CACHE_SIZE)
def _email(address: str) -> tuple[str, str]:
    """(normalised address, "") or ("", reason); a tuple so that failures are cached too."""
    if address.isascii() and _is_plain_email(address):
        return address, ""
    try:
        result = validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        return "", str(exc)
    return result.normalized.lower(), ""


def normalise_email(text: str) -> str:
    address = text.strip()
    if match := _DISPLAY_NAME.match(address):
        address = match[1].strip()
    if address[:7].lower() == "mailto:":
        address = address[7:]
    value, reason = _email(address.strip().lower())
    if not value:
        raise InvalidValue(f"'{text}' is not a valid e-mail address ({reason.rstrip('.')})")
    return value


# --- phone ----------------------------------------------------------------------------------


_PHONE_PUNCTUATION = str.maketrans("", "", " -/.\u00a0")


@dataclass(frozen=True, slots=True)
class _PhonePlan:
    country_code: str
    international_prefix: str
    lengths: frozenset[int]  # possible lengths of the national number, local-only ones excluded
    pattern: re.Pattern[str]  # the region's general national-number pattern


@cache
def _phone_plan(region: str) -> _PhonePlan | None:
    """What the quick path needs, for regions whose trunk prefix is a plain "0"."""
    meta = PhoneMetadata.metadata_for_region(region)
    if meta is None or meta.national_prefix != "0" or meta.national_prefix_for_parsing != "0":
        return None
    if meta.national_prefix_transform_rule or not meta.international_prefix:
        return None
    desc = meta.general_desc
    lengths = frozenset(desc.possible_length) - frozenset(desc.possible_length_local_only or ())
    return _PhonePlan(
        str(meta.country_code),
        meta.international_prefix,
        lengths,
        re.compile(desc.national_number_pattern),
    )


def _quick_e164(text: str, region: str) -> str | None:
    """The plain spellings ("0171 1234567", "+49 171 1234567") without phonenumbers.parse,
    which costs 20 µs; None means "ask phonenumbers", never "invalid"."""
    plan = _phone_plan(region)
    digits = text.translate(_PHONE_PUNCTUATION)
    if plan is None or not digits.isascii():
        return None
    if digits.startswith("+") or digits.startswith(plan.international_prefix):
        international = digits.removeprefix("+").removeprefix(plan.international_prefix)
        if not international.startswith(plan.country_code):
            return None
        national = international[len(plan.country_code) :]
    elif digits.startswith("0") and not plan.pattern.fullmatch(digits):
        # phonenumbers keeps the "0" when only the number with it is viable: so do we, slowly.
        national = digits[1:]
    else:
        return None
    if national[:1] in ("", "0") or not national.isdigit() or len(national) not in plan.lengths:
        return None
    return f"+{plan.country_code}{national}"


@lru_cache(maxsize=_CACHE_SIZE)
def _phone(text: str, region: str) -> str:
    """E.164 number, or "" when the text cannot be a phone number (cached either way)."""
    if quick := _quick_e164(text, region):
        return quick
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return ""
    # Possible, not valid: real data holds many numbers the metadata calls invalid. But a
    # "local only" number lacks its area code, and its E.164 form would be wrong.
    if phonenumbers.is_possible_number_with_reason(number) != ValidationResult.IS_POSSIBLE:
        return ""
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    # Runs of zeros ("000000") come out as an E.164 string that reads back differently.
    return e164 if _reads_back(e164) else ""


def _reads_back(e164: str) -> bool:
    number = phonenumbers.parse(e164)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == e164


def normalise_phone(text: str, region: str = "DE") -> str:
    value = _phone(text.strip(), region)
    if not value:
        raise InvalidValue(f"'{text}' is not a possible phone number")
    return value
