import pytest

from relata.ingest.mapping import (
    MappedRow,
    Mapping,
    MappingError,
    apply_mapping,
    guess_mapping,
    load_mapping,
    mapping_problems,
)

# --- loading --------------------------------------------------------------------------------


def test_load_mapping(tmp_path):
    path = tmp_path / "shop.toml"
    path.write_text(
        'source_key = "KundenNr"\n'
        "[fields]\n"
        'first_name = "Vorname"\n'
        'last_name = "Nachname"\n'
        'email = "E-Mail"\n'
        'street = "Straße"\n',
        encoding="utf-8",
    )
    mapping = load_mapping(path)
    assert mapping.source_key == ("KundenNr",)
    assert mapping.fields == {
        "first_name": "Vorname",
        "last_name": "Nachname",
        "email": "E-Mail",
        "street": "Straße",
    }


def test_load_mapping_with_composite_key(tmp_path):
    path = tmp_path / "pos.toml"
    path.write_text('source_key = ["Filiale", "Bon"]\n[fields]\nloyalty_card = "Karte"\n')
    assert load_mapping(path).source_key == ("Filiale", "Bon")


def test_load_mapping_without_key(tmp_path):
    path = tmp_path / "flyer.toml"
    path.write_text('[fields]\nemail = "Mail"\n')
    assert load_mapping(path).source_key == ()


def test_unknown_canonical_fields_are_named(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[fields]\nvorname = "Vorname"\nshoe_size = "Größe"\nemail = "Mail"\n')
    with pytest.raises(MappingError, match=r"unknown canonical field.*'vorname', 'shoe_size'"):
        load_mapping(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("source_key = 42\n[fields]\n", "source_key must be a column name"),
        ('[fields]\nemail = ""\n', "field 'email' must name a column"),
        ("[fields]\nemail = 3\n", "field 'email' must name a column"),
        ('fields = "Mail"\n', "'fields' must be a table"),
        ('sourcekey = "Id"\n[fields]\n', "unknown mapping key.*'sourcekey'"),
        ("[fields\n", "not valid TOML"),
    ],
)
def test_bad_mapping_files(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(MappingError, match=message):
        load_mapping(path)


def test_missing_mapping_file(tmp_path):
    with pytest.raises(MappingError, match="cannot read"):
        load_mapping(tmp_path / "nowhere.toml")


def test_json_round_trip():
    mapping = Mapping(("Filiale", "Bon"), {"email": "E-Mail", "last_name": "Nachname"})
    assert Mapping.from_json(mapping.to_json()) == mapping
    assert mapping.to_json() == {
        "source_key": ["Filiale", "Bon"],
        "fields": {"email": "E-Mail", "last_name": "Nachname"},
    }


def test_from_json_validates():
    with pytest.raises(MappingError, match="'mail'"):
        Mapping.from_json({"source_key": "Id", "fields": {"mail": "Mail"}})


# --- guessing -------------------------------------------------------------------------------


def test_guess_german_headers():
    headers = ["KundenNr", "Vorname", "Nachname", "Geb.-Datum", "E-Mail-Adresse", "Tel."]
    headers += ["Straße", "Hausnr.", "PLZ", "Ort", "Land", "Geschlecht", "Firma", "Notiz"]
    mapping = guess_mapping(headers)
    assert mapping.source_key == ("KundenNr",)
    assert mapping.fields == {
        "first_name": "Vorname",
        "last_name": "Nachname",
        "birth_date": "Geb.-Datum",
        "email": "E-Mail-Adresse",
        "phone": "Tel.",
        "street": "Straße",
        "house_number": "Hausnr.",
        "postcode": "PLZ",
        "city": "Ort",
        "country": "Land",
        "customer_number": "KundenNr",
        "gender": "Geschlecht",
        "company": "Firma",
    }


def test_guess_english_headers():
    headers = ["rec_id", "given_name", "surname", "street_number", "address_1", "address_2"]
    headers += ["suburb", "postcode", "state", "date_of_birth", "soc_sec_id"]
    mapping = guess_mapping(headers)  # the FEBRL layout
    assert mapping.source_key == ("rec_id",)
    assert mapping.fields == {
        "first_name": "given_name",
        "last_name": "surname",
        "birth_date": "date_of_birth",
        "street": "address_1",
        "house_number": "street_number",
        "postcode": "postcode",
        "city": "suburb",
    }


def test_specific_header_wins_over_generic():
    mapping = guess_mapping(["Name", "Nachname", "Vorname"])
    assert mapping.fields == {"first_name": "Vorname", "last_name": "Nachname"}


def test_a_column_serves_one_field():
    mapping = guess_mapping(["ID", "Name"])
    assert mapping.source_key == ("ID",)
    assert mapping.fields == {"last_name": "Name"}


def test_customer_number_is_the_key_when_there_is_no_id():
    assert guess_mapping(["Kundennummer", "E-Mail"]).source_key == ("Kundennummer",)


def test_no_key_column_means_content_hash():
    mapping = guess_mapping(["Vorname", "Nachname", "Bemerkung"])
    assert mapping.source_key == ()
    assert "Bemerkung" not in mapping.fields.values()


def test_guess_shop_export_headers():
    headers = ["Customer ID", "First Name", "Last Name", "Email", "Accepts Email Marketing"]
    headers += ["Default Address Company", "Default Address Address1", "Default Address Address2"]
    headers += ["Default Address City", "Default Address Country Code", "Default Address Zip"]
    headers += ["Phone", "Accepts SMS Marketing", "Total Spent"]
    mapping = guess_mapping(headers)
    assert mapping.source_key == ("Customer ID",)
    assert mapping.fields == {
        "first_name": "First Name",
        "last_name": "Last Name",
        "email": "Email",  # not "Accepts Email Marketing": its last word is not e-mail
        "phone": "Phone",
        "street": "Default Address Address1",
        "postcode": "Default Address Zip",
        "city": "Default Address City",
        "country": "Default Address Country Code",
        "company": "Default Address Company",  # "address" qualifies, "company" names it
        "customer_number": "Customer ID",
    }


def test_guess_register_headers_by_their_last_word():
    headers = ["ncid", "last_name", "first_name", "name_suffix_lbl", "res_street_address"]
    headers += ["res_city_desc", "zip_code", "full_phone_number", "gender_code", "birth_year"]
    assert guess_mapping(headers).fields == {
        "first_name": "first_name",
        "last_name": "last_name",
        "street": "res_street_address",
        "city": "res_city_desc",
        "postcode": "zip_code",
        "phone": "full_phone_number",
        "gender": "gender_code",
    }


def test_a_yes_no_column_named_after_a_field_is_not_that_field():
    mapping = guess_mapping(["customerID", "gender", "PhoneService", "Churn"])
    assert mapping.fields == {"gender": "gender", "customer_number": "customerID"}


def test_one_column_for_street_and_house_number_is_the_street():
    for header in ["Straße u. Hausnr.", "Strasse/Hausnummer", "Straße und Hausnummer"]:
        assert guess_mapping(["Kunden-Nr", "Nachname", header]).fields["street"] == header


def test_german_phone_headers_with_a_qualifier():
    assert guess_mapping(["Nachname", "Tel. privat"]).fields["phone"] == "Tel. privat"
    assert guess_mapping(["Nachname", "Mobiltelefon"]).fields["phone"] == "Mobiltelefon"


def test_a_record_id_key_is_no_customer_number():
    assert "customer_number" not in guess_mapping(["rec_id", "surname"]).fields


# --- applying -------------------------------------------------------------------------------

ROW = {
    "KundenNr": "4711",
    "Vorname": "Jürgen",
    "Nachname": " Müller ",
    "E-Mail": "",
    "Notiz": "Stammkunde",
    "Filiale": "",
}
MAPPING = Mapping(
    ("KundenNr",), {"first_name": "Vorname", "last_name": "Nachname", "email": "E-Mail"}
)


def test_apply_mapping():
    assert apply_mapping(MAPPING, ROW) == MappedRow(
        source_key="4711",
        fields={"first_name": "Jürgen", "last_name": " Müller "},
        attributes={"KundenNr": "4711", "Notiz": "Stammkunde"},
    )


def test_composite_key():
    mapping = Mapping(("Filiale", "Bon"), {"loyalty_card": "Karte"})
    row = {"Filiale": " 12 ", "Bon": "0815", "Karte": "9276"}
    assert apply_mapping(mapping, row).source_key == "12|0815"


def test_empty_key_column_is_an_error():
    with pytest.raises(MappingError, match="empty source key column 'Filiale'"):
        apply_mapping(Mapping(("KundenNr", "Filiale"), {}), ROW)


def test_missing_key_column_is_an_error():
    with pytest.raises(MappingError, match="source key column 'Bon' is not in the row"):
        apply_mapping(Mapping(("Bon",), {}), ROW)


def test_missing_mapped_column_is_an_error():
    mapping = Mapping(("KundenNr",), {"phone": "Telefon"})
    with pytest.raises(MappingError, match="column 'Telefon' \\(mapped to phone\\)"):
        apply_mapping(mapping, ROW)


def test_content_key_is_idempotent():
    mapping = Mapping((), {"last_name": "Nachname"})
    first = apply_mapping(mapping, ROW).source_key
    assert first.startswith("sha1:") and len(first) == 5 + 40
    reordered = dict(reversed(list(ROW.items())))
    assert apply_mapping(mapping, reordered).source_key == first
    # An export with an extra empty column, or padded cells, is the same content.
    assert apply_mapping(mapping, ROW | {"Neu": ""}).source_key == first
    assert apply_mapping(mapping, ROW | {"Notiz": " Stammkunde"}).source_key == first
    assert apply_mapping(mapping, ROW | {"Notiz": "Neukunde"}).source_key != first


# --- problems -------------------------------------------------------------------------------


def test_mapping_problems():
    mapping = Mapping(("KundenNr",), {"last_name": "Nachname", "email": "Mail"})
    assert mapping_problems(mapping, ["KundenNr", "Nachname", "Mail"]) == []
    assert mapping_problems(mapping, ["Nachname"]) == [
        "source key column 'KundenNr' is not in the file",
        "column 'Mail' (mapped to email) is not in the file",
    ]


def test_mapping_without_identifier_is_a_problem():
    problems = mapping_problems(Mapping((), {"city": "Ort"}), ["Ort"])
    assert problems == [
        "no name or identifier is mapped (one of first_name, last_name, company, email, "
        "phone, customer_number, loyalty_card): every row would be quarantined"
    ]
