from datetime import date, timedelta

import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from relata.ingest.normalise import (
    CANONICAL_FIELDS,
    InvalidValue,
    fold,
    normalise_birth_date,
    normalise_country,
    normalise_email,
    normalise_gender,
    normalise_house_number,
    normalise_identifier,
    normalise_name,
    normalise_phone,
    normalise_postcode,
    normalise_record,
    normalise_street,
    parse_date,
    split_street,
)

TODAY = date(2025, 6, 1)


# --- fold -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("Müller-Lüdenscheidt", "mueller luedenscheidt"),
        ("MUELLER", "mueller"),
        ("  Straße  ", "strasse"),
        ("Éléonore D'Arcy", "eleonore d arcy"),
        ("Mu\u0308ller", "mueller"),  # decomposed umlaut, as macOS file names deliver it
        ("ＭÜＬＬＥＲ", "mueller"),  # full-width letters
        ("E-Mail_Adresse.", "e mail adresse"),
    ],
)
def test_fold(text, key):
    assert fold(text) == key


@given(st.text())
def test_fold_is_idempotent(text):
    assert fold(fold(text)) == fold(text)


# --- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ("MÜLLER-LÜDENSCHEIDT", "last_name", "Müller-Lüdenscheidt"),
        ("von der heide", "last_name", "von der Heide"),
        ("VAN DEN BERG", "last_name", "van den Berg"),
        ("  jürgen   ", "first_name", "Jürgen"),
        ("anna  maria", "first_name", "Anna Maria"),
        ("McDonald", "last_name", "McDonald"),  # mixed case is deliberate
        ("O'BRIEN", "last_name", "O'Brien"),
        ("FRANKFURT AM MAIN", "city", "Frankfurt am Main"),
        ("halle (saale)", "city", "Halle (Saale)"),
        ("MÜLLER GMBH & CO. KG", "company", "Müller GmbH & Co. KG"),
        ("ZUM LÖWEN", "company", "Zum Löwen"),
        ("X", "first_name", "X"),
        ("straße", "city", "Straße"),
    ],
)
def test_normalise_name(text, field, expected):
    assert normalise_name(text, field) == expected


def test_name_is_nfc():
    assert normalise_name("Mu\u0308ller") == "M\u00fcller"


# --- e-mail ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Max.Mueller@Example.DE", "max.mueller@example.de"),
        (" <max@example.de> ", "max@example.de"),
        ("mailto:Max@Example.de", "max@example.de"),
        ("Max Müller <max@example.de>", "max@example.de"),
        ("Jürgen@Bücher.DE", "jürgen@bücher.de"),
        ("a@xn--bcher-kva.de", "a@bücher.de"),
        ("first+tag@sub.example.co.uk", "first+tag@sub.example.co.uk"),
    ],
)
def test_normalise_email(text, expected):
    assert normalise_email(text) == expected


@pytest.mark.parametrize(
    "text", ["foo@", "foo", "a..b@example.de", "max@example", "max@example.local", "a b@x.de"]
)
def test_invalid_email(text):
    with pytest.raises(InvalidValue, match="not a valid e-mail address"):
        normalise_email(text)


_atom = st.from_regex(r"[a-z0-9._%+-]{1,20}", fullmatch=True)
_domain = st.from_regex(r"([a-z0-9-]{1,12}\.){1,3}[a-z0-9]{1,6}", fullmatch=True)


@settings(max_examples=300)
@given(_atom, _domain)
def test_email_fast_path_agrees_with_email_validator(local, domain):
    address = f"{local}@{domain}"
    try:
        expected = validate_email(address, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        expected = None
    try:
        actual = normalise_email(address)
    except InvalidValue:
        actual = None
    assert actual == expected


# --- phone ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0171 1234567", "+491711234567"),
        ("+49 (0)30 123456", "+4930123456"),
        ("0049 30 1234567", "+49301234567"),
        ("030/123 456-7", "+49301234567"),
        ("+49 171 1234567", "+491711234567"),
        ("+43 664 1234567", "+436641234567"),
        ("+1 650 253 0000", "+16502530000"),
    ],
)
def test_normalise_phone(text, expected):
    assert normalise_phone(text) == expected


def test_national_number_follows_region():
    assert normalise_phone("0664 1234567", "AT") == "+436641234567"


@pytest.mark.parametrize("text", ["abc", "12", "0", "+49 1", "0171 1234567890123456", "000000"])
def test_impossible_phone(text):
    with pytest.raises(InvalidValue, match="not a possible phone number"):
        normalise_phone(text)


def _reference_phone(text: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason != phonenumbers.ValidationResult.IS_POSSIBLE:
        return None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    again = phonenumbers.format_number(
        phonenumbers.parse(e164), phonenumbers.PhoneNumberFormat.E164
    )
    return e164 if again == e164 else None


_phone_text = st.builds(
    lambda prefix, digits, sep: prefix + sep.join(digits),
    st.sampled_from(["0", "00", "+49", "0049", "+43", "+41", "+44", "+1", "", "0 0"]),
    st.lists(st.from_regex(r"[0-9]{1,5}", fullmatch=True), min_size=1, max_size=4),
    st.sampled_from([" ", "-", "/", ""]),
)


@settings(max_examples=400)
@given(_phone_text, st.sampled_from(["DE", "AT", "CH", "GB", "FR", "NL", "US", "IT"]))
def test_phone_quick_path_agrees_with_phonenumbers(text, region):
    try:
        actual = normalise_phone(text, region)
    except InvalidValue:
        actual = None
    assert actual == _reference_phone(text, region)


@given(_phone_text)
def test_normalise_phone_is_idempotent(text):
    try:
        once = normalise_phone(text)
    except InvalidValue:
        return
    assert normalise_phone(once) == once


# --- dates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "1980-12-31",
        "1980-12-31T08:15:00",
        "1980-12-31 00:00:00",
        "31.12.1980",
        "31.12.80",
        "31/12/1980",
        "31-12-1980",
        "19801231",
        "1980/12/31",
        "31.12.1980 00:00",
    ],
)
def test_parse_date_formats(text):
    assert parse_date(text, today=TODAY) == date(1980, 12, 31)


def test_parse_date_short_forms():
    assert parse_date("1.2.1980") == date(1980, 2, 1)
    assert parse_date("01/02/1980") == date(1980, 2, 1)  # day first, as in Europe


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("01.01.05", date(2005, 1, 1)),
        ("01.06.25", date(2025, 6, 1)),
        ("02.06.25", date(1925, 6, 2)),
    ],
)
def test_two_digit_year_is_never_in_the_future(text, expected):
    assert parse_date(text, today=TODAY) == expected


def test_two_digit_leap_day():
    assert parse_date("29.02.00", today=TODAY) == date(2000, 2, 29)


@pytest.mark.parametrize("text", [None, "", "  ", "NULL", "n/a", "-"])
def test_parse_date_missing(text):
    assert parse_date(text) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("31.02.1980", "'31.02.1980' is not a real date"),
        ("1980-13-01", "is not a real date"),
        ("Dezember 1980", "not a date in a known format"),
        ("31.12.1980.", "not a date in a known format"),
        ("1980-12-31-12", "not a date in a known format"),
    ],
)
def test_parse_date_rejects(text, message):
    with pytest.raises(InvalidValue, match=message):
        parse_date(text)


@given(st.dates(min_value=date(1900, 1, 1), max_value=date.today()))
def test_parse_date_round_trips(day):
    assert parse_date(day.isoformat()) == day
    assert parse_date(day.strftime("%d.%m.%Y")) == day
    assert parse_date(day.strftime("%Y%m%d")) == day


@pytest.mark.parametrize(
    ("text", "message"),
    [("01.01.2030", "in the future"), ("1879-12-31", "before 1880"), ("30.02.1990", "real date")],
)
def test_birth_date_limits(text, message):
    with pytest.raises(InvalidValue, match=message):
        normalise_birth_date(text, TODAY)


def test_birth_date_is_iso():
    assert normalise_birth_date("3.4.1956", TODAY) == "1956-04-03"


# --- address, country, gender, identifiers --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "country", "expected"),
    [
        ("1067", "DE", "01067"),
        ("1067.0", "DE", "01067"),
        ("1067", None, "1067"),
        ("1010", "AT", "1010"),
        ("D-10115", "DE", "10115"),
        ("DE-10115", None, "10115"),
        ("A-1010", "AT", "1010"),
        ("CH-8001", "CH", "8001"),
        ("sw1a  1aa", "GB", "SW1A 1AA"),
    ],
)
def test_normalise_postcode(text, country, expected):
    assert normalise_postcode(text, country) == expected


@pytest.mark.parametrize(
    ("text", "street", "number"),
    [
        ("Hauptstr. 5a", "Hauptstr.", "5a"),
        ("Am Markt 12-14", "Am Markt", "12-14"),
        ("Lindenweg 3 b", "Lindenweg", "3 b"),
        ("Hauptstr.5", "Hauptstr.", "5"),
        ("Gartenstraße 7, ", "Gartenstraße 7,", ""),
        ("Straße des 17. Juni", "Straße des 17. Juni", ""),
        ("B 27", "B 27", ""),
        ("Lindenweg", "Lindenweg", ""),
    ],
)
def test_split_street(text, street, number):
    assert split_street(text) == (street, number)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hauptstr.", "Hauptstraße"),
        ("Berliner Str.", "Berliner Straße"),
        ("HAUPTSTR.", "Hauptstraße"),
        ("Str. des 17. Juni", "Straße des 17. Juni"),
        ("AN DER ALSTER", "An der Alster"),
        ("Elsterweg", "Elsterweg"),
    ],
)
def test_normalise_street(text, expected):
    assert normalise_street(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"), [("5 A", "5a"), ("12 - 14", "12-14"), (" 7 ", "7"), ("3.0", "3")]
)
def test_normalise_house_number(text, expected):
    assert normalise_house_number(text) == expected


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("DE", "DE"),
        ("de", "DE"),
        ("DEU", "DE"),
        ("Deutschland", "DE"),
        ("BRD", "DE"),
        ("Germany", "DE"),
        ("Österreich", "AT"),
        ("Schweiz", "CH"),
        ("Großbritannien", "GB"),
        ("Vereinigtes Königreich", "GB"),
        ("UK", "GB"),
        ("USA", "US"),
        ("Türkei", "TR"),
        ("Dänemark", "DK"),
        ("Netherlands", "NL"),
        ("france", "FR"),
    ],
)
def test_normalise_country(text, code):
    assert normalise_country(text) == code


def test_unknown_country():
    with pytest.raises(InvalidValue, match="'Atlantis' is not a known country"):
        normalise_country("Atlantis")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("M", "m"),
        ("männlich", "m"),
        ("Herr", "m"),
        ("Hr.", "m"),
        ("Mr", "m"),
        ("W", "f"),
        ("weiblich", "f"),
        ("Frau", "f"),
        ("Fr.", "f"),
        ("Mrs", "f"),
        ("divers", "d"),
        ("X", "d"),
        ("non-binary", "d"),
    ],
)
def test_normalise_gender(text, code):
    assert normalise_gender(text) == code


def test_unknown_gender():
    with pytest.raises(InvalidValue, match="not a recognised gender"):
        normalise_gender("Firma")


@pytest.mark.parametrize(
    ("text", "expected"), [("12345.0", "12345"), (" 123 456 ", "123456"), ("A-17.0", "A-17.0")]
)
def test_normalise_identifier(text, expected):
    assert normalise_identifier(text) == expected


# --- the record -----------------------------------------------------------------------------


def test_typical_german_row():
    result = normalise_record(
        {
            "first_name": "JÜRGEN",
            "last_name": "müller-lüdenscheidt",
            "birth_date": "31.12.80",
            "email": "<Juergen.Mueller@Example.DE>",
            "phone": "0171 1234567",
            "street": "Hauptstr. 5 A",
            "house_number": "",
            "postcode": "1067",
            "city": "DRESDEN",
            "country": "Deutschland",
            "customer_number": "12345.0",
            "loyalty_card": "9276 0000 1234",
            "gender": "Herr",
            "company": None,
        },
        today=TODAY,
    )
    assert result.data == {
        "first_name": "Jürgen",
        "last_name": "Müller-Lüdenscheidt",
        "birth_date": "1980-12-31",
        "email": "juergen.mueller@example.de",
        "phone": "+491711234567",
        "street": "Hauptstraße",
        "house_number": "5a",
        "postcode": "01067",
        "city": "Dresden",
        "country": "DE",
        "customer_number": "12345",
        "loyalty_card": "927600001234",
        "gender": "m",
    }
    assert result.dropped == {}
    assert result.problems == ()


def test_given_house_number_keeps_street_intact():
    result = normalise_record({"last_name": "Weber", "street": "Straße 7", "house_number": "3"})
    assert (result.data["street"], result.data["house_number"]) == ("Straße 7", "3")


def test_country_decides_phone_region():
    result = normalise_record({"last_name": "Gruber", "phone": "0664 1234567", "country": "AT"})
    assert result.data["phone"] == "+436641234567"


def test_invalid_contact_values_are_dropped_not_rejected():
    result = normalise_record(
        {"last_name": "Schulz", "email": "schulz@", "phone": "abc", "country": "Atlantis"}
    )
    assert result.data == {"last_name": "Schulz"}
    assert result.dropped == {"email": "schulz@", "phone": "abc", "country": "Atlantis"}
    assert len(result.problems) == 3
    assert any(
        p.startswith("email 'schulz@' is not a valid e-mail address") for p in result.problems
    )


def test_impossible_birth_date_rejects_the_row():
    with pytest.raises(InvalidValue, match=r"birth_date '31\.02\.1980' is not a real date"):
        normalise_record({"last_name": "Schulz", "birth_date": "31.02.1980"})


def test_future_birth_date_rejects_the_row():
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    with pytest.raises(InvalidValue, match="in the future"):
        normalise_record({"last_name": "Schulz", "birth_date": tomorrow})


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"city": "Berlin", "postcode": "10115"},
        {"email": "kaputt", "phone": "xyz"},
        {"first_name": "NULL", "last_name": " ", "company": "n/a", "email": "None"},
    ],
)
def test_row_without_identifier_is_rejected(fields):
    with pytest.raises(InvalidValue, match="no usable identifier or name"):
        normalise_record(fields)


def test_identity_can_come_from_elsewhere():
    result = normalise_record({"city": "KÖLN"}, require_identity=False)
    assert result.data == {"city": "Köln"}


@pytest.mark.parametrize("field", ["company", "email", "phone", "customer_number", "loyalty_card"])
def test_any_single_identifier_suffices(field):
    values = {"company": "ACME", "email": "a@example.de", "phone": "030 123456"}
    values |= {"customer_number": "K1", "loyalty_card": "42"}
    assert field in normalise_record({field: values[field]}).data


def test_missing_markers_are_missing():
    result = normalise_record({"last_name": "Kaya", "city": "NULL", "phone": "-", "email": "null"})
    assert result.data == {"last_name": "Kaya"}
    assert result.problems == ()


def test_unknown_field_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown canonical fields: shoe_size"):
        normalise_record({"last_name": "Kaya", "shoe_size": "42"})


def test_all_canonical_fields_are_handled():
    fields = dict.fromkeys(CANONICAL_FIELDS, "1")
    fields |= {"birth_date": "1.1.1990", "email": "a@example.de", "country": "DE", "gender": "m"}
    fields |= {"phone": "030 123456", "street": "Hauptstr."}
    assert set(normalise_record(fields).data) == set(CANONICAL_FIELDS)
