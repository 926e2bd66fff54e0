"""Clean one raw record into canonical values: pure functions, no I/O.

Every normaliser takes a stripped, non-empty string and returns the canonical value or
raises `InvalidValue`. `normalise_record` decides per field whether an invalid value
rejects the whole row (quarantine) or is only dropped with a note.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import cache, lru_cache

import phonenumbers
import pycountry
from email_validator import EmailNotValidError, validate_email
from phonenumbers import PhoneMetadata, ValidationResult

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
