import csv
import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relata.ingest.readers import (
    RawRow,
    ReadError,
    detect_encoding,
    headers,
    read_file,
    sniff_delimiter,
)


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


# --- encoding -------------------------------------------------------------------------------


def test_utf8(tmp_path):
    assert detect_encoding(write(tmp_path / "a.csv", "Name;Straße\nMüller;Weg\n")) == "utf-8"


def test_utf8_with_bom(tmp_path):
    path = write(tmp_path / "a.csv", "\ufeffName;Straße\nMüller;Weg\n")
    assert detect_encoding(path) == "utf-8-sig"
    assert headers(path) == ["Name", "Straße"]


def test_cp1252(tmp_path):
    path = write(tmp_path / "a.csv", "Name;Straße\nMüller;Größenweg €\n", "cp1252")
    assert detect_encoding(path) == "cp1252"
    assert [row.values for row in read_file(path)] == [{"Name": "Müller", "Straße": "Größenweg €"}]


def test_utf8_bom_on_a_cp1252_file(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "Name\nMüller\n".encode("cp1252"))
    with pytest.raises(ReadError, match="not UTF-8 throughout"):
        read_file(path)


def test_latin1_when_cp1252_cannot_decode(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes("Name;Ort\nMüller;".encode("latin-1") + b"\x81\n")
    assert detect_encoding(path) == "latin-1"


def test_utf8_broken_after_the_first_chunk(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"Name\n" + b"a\n" * (1 << 20) + "Müller\n".encode("cp1252"))
    assert detect_encoding(path) == "cp1252"


def test_utf8_character_across_chunks(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"N" * ((1 << 20) - 1) + "ü\n".encode())
    assert detect_encoding(path) == "utf-8"


def test_utf16_excel_unicode_text(tmp_path):
    path = write(tmp_path / "a.txt", "\ufeffVorname\tNachname\r\nJürgen\tMüller\r\n", "utf-16-le")
    assert detect_encoding(path) == "utf-16"
    assert [row.values for row in read_file(path)] == [{"Vorname": "Jürgen", "Nachname": "Müller"}]


@pytest.mark.parametrize("content", [b"", b"  \n\n", b"\xef\xbb\xbf\n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "a.csv"
    path.write_bytes(content)
    with pytest.raises(ReadError, match="empty"):
        read_file(path)


def test_binary_file(tmp_path):
    path = tmp_path / "a.xlsx"
    path.write_bytes(b"PK\x03\x04\x00\x00\x08\x00" + bytes(range(256)))
    with pytest.raises(ReadError, match="binary"):
        read_file(path)


# --- delimiters -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "delimiter"),
    [
        ("a;b;c\n1;2;3\n", ";"),
        ("a,b,c\n1,2,3\n", ","),
        ("a\tb\tc\n1\t2\t3\n", "\t"),
        ("a|b|c\n1|2|3\n", "|"),
        ('Name;"Straße, Nr";Ort\nMüller;"Weg 1, Hinterhaus";Köln\n', ";"),
        ('"Nachname, Vorname",Ort\n"Müller; Jürgen",Köln\n', ","),
        ("Name;Ort\nMüller, Jürgen;Köln\nSchmidt, Anna;Bonn\n", ";"),
        ("email\na@example.de\n", ","),
        ("a;b;c\n1;2;3\n4;5;", ";"),  # the sample ends mid-row
    ],
)
def test_sniff_delimiter(sample, delimiter):
    assert sniff_delimiter(sample) == delimiter


def test_next_lines_confirm_the_delimiter():
    # The header alone suggests commas; the rows say semicolons.
    sample = "Name, Vorname;Ort\nMüller, Jürgen;Köln\nSchmidt, Anna;Bonn\n"
    assert sniff_delimiter(sample) == ";"


# --- CSV ------------------------------------------------------------------------------------


def test_semicolon_csv(tmp_path):
    path = write(tmp_path / "kunden.csv", "KundenNr;Vorname;Nachname\n4711; Jürgen ;Müller\n")
    assert list(read_file(path)) == [
        RawRow(2, {"KundenNr": "4711", "Vorname": "Jürgen", "Nachname": "Müller"}, None, None)
    ]


def test_tab_separated(tmp_path):
    path = write(tmp_path / "kunden.tsv", "id\tname\n1\tMüller, Jürgen\n")
    assert [row.values for row in read_file(path)] == [{"id": "1", "name": "Müller, Jürgen"}]


def test_comma_csv_with_quoted_newline(tmp_path):
    text = 'id,name,note\r\n1,Müller,"Zeile 1\r\nZeile 2"\r\n2,Schmidt,ok\r\n'
    rows = list(read_file(write(tmp_path / "a.csv", text)))
    assert [(row.line_no, row.values) for row in rows] == [
        (2, {"id": "1", "name": "Müller", "note": "Zeile 1\r\nZeile 2"}),
        (4, {"id": "2", "name": "Schmidt", "note": "ok"}),
    ]


def test_short_row_is_reported_not_dropped(tmp_path):
    text = "a;b;c\n1;2;3\n4;5\n6;7;8\n"
    rows = list(read_file(write(tmp_path / "a.csv", text)))
    assert rows[1] == RawRow(3, None, "4;5", "expected 3 fields, found 2")
    assert [row.line_no for row in rows] == [2, 3, 4]


def test_long_row_is_reported(tmp_path):
    rows = list(read_file(write(tmp_path / "a.csv", "a;b\n1;2;3\n")))
    assert rows == [RawRow(2, None, "1;2;3", "expected 2 fields, found 3")]


def test_trailing_empty_cells_are_tolerated(tmp_path):
    rows = list(read_file(write(tmp_path / "a.csv", "a;b\n1;2;;\n")))
    assert rows == [RawRow(2, {"a": "1", "b": "2"}, None, None)]


def test_blank_lines_are_skipped(tmp_path):
    rows = list(read_file(write(tmp_path / "a.csv", "\na;b\n\n1;2\n;\n  \n3;4\n")))
    assert [(row.line_no, row.values) for row in rows] == [
        (4, {"a": "1", "b": "2"}),
        (7, {"a": "3", "b": "4"}),
    ]


def test_header_names_are_cleaned(tmp_path):
    path = write(tmp_path / "a.csv", " Name ;Name;;Name_2;Name\n1;2;3;4;5\n")
    assert headers(path) == ["Name", "Name_2", "column_3", "Name_2_2", "Name_3"]


def test_excel_sep_line(tmp_path):
    path = write(tmp_path / "a.csv", "sep=;\nName;Ort\nMüller, J.;Köln\n")
    assert headers(path) == ["Name", "Ort"]
    assert [(row.line_no, row.values) for row in read_file(path)] == [
        (3, {"Name": "Müller, J.", "Ort": "Köln"})
    ]


def test_header_without_names(tmp_path):
    with pytest.raises(ReadError, match="no header"):
        read_file(write(tmp_path / "a.csv", ";;\n1;2;3\n"))


def test_read_error_is_raised_before_iterating(tmp_path):
    with pytest.raises(ReadError):
        read_file(write(tmp_path / "a.csv", ""))


def test_unknown_suffix_sniffs_csv(tmp_path):
    path = write(tmp_path / "export.dat", "a;b\n1;2\n")
    assert [row.values for row in read_file(path)] == [{"a": "1", "b": "2"}]


def test_unknown_format(tmp_path):
    with pytest.raises(ReadError, match="unknown format"):
        read_file(write(tmp_path / "notes.md", "# Notizen\nnichts hier\n"))


def test_json_array_is_refused(tmp_path):
    with pytest.raises(ReadError, match="JSON array"):
        read_file(write(tmp_path / "a.json", '[{"a": 1}]'))


_cell = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), whitelist_characters=';"\n,\t'),
    max_size=12,
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sampled_from([";", ",", "\t", "|"]),
    st.integers(2, 5).flatmap(lambda n: st.lists(st.lists(_cell, min_size=n, max_size=n))),
)
def test_csv_round_trip(tmp_path, delimiter, rows):
    # Two columns at least: a one-column file has no delimiter to find.
    width = len(rows[0]) if rows else 2
    header = [f"Spalte {i}" for i in range(width)]
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter).writerows([header, *rows])
    path = write(tmp_path / "round.csv", buffer.getvalue())
    expected = [
        dict(zip(header, (cell.strip() for cell in row), strict=True))
        for row in rows
        if any(cell.strip() for cell in row)
    ]
    assert [row.values for row in read_file(path)] == expected


# --- JSON Lines -----------------------------------------------------------------------------


def test_jsonl(tmp_path):
    lines = [
        {"id": 1, "name": " Müller ", "address": {"street": "Hauptstr. 5", "geo": {"lat": 52.5}}},
        {"id": 2, "vip": True, "tags": ["a", "ü"], "email": None},
    ]
    path = write(tmp_path / "a.jsonl", "\n".join(json.dumps(line) for line in lines) + "\n")
    assert list(read_file(path)) == [
        RawRow(
            1,
            {
                "id": "1",
                "name": "Müller",
                "address.street": "Hauptstr. 5",
                "address.geo.lat": "52.5",
            },
            None,
            None,
        ),
        RawRow(2, {"id": "2", "vip": "true", "tags": '["a", "ü"]'}, None, None),
    ]


def test_invalid_json_lines_are_reported(tmp_path):
    text = '{"id": 1}\n\n{"id": 2,\n[1, 2]\n"text"\n{"id": 3}\r\n'
    rows = list(read_file(write(tmp_path / "a.ndjson", text)))
    assert [row.line_no for row in rows] == [1, 3, 4, 5, 6]
    assert rows[1].values is None and rows[1].text == '{"id": 2,'
    assert rows[1].error.startswith("invalid JSON: ")
    assert rows[2].error == "invalid JSON: expected an object, found '['"
    assert rows[3].error == "invalid JSON: expected an object, found '\"'"
    assert rows[4].values == {"id": "3"}


def test_jsonl_is_sniffed_without_suffix(tmp_path):
    path = write(tmp_path / "export.json", '  {"a": "x"}\n{"b": "y"}\n')
    assert [row.values for row in read_file(path)] == [{"a": "x"}, {"b": "y"}]


def test_jsonl_headers_are_the_union_of_keys(tmp_path):
    text = '{"id": 1, "name": "a"}\nkaputt\n{"id": 2, "address": {"city": "Köln"}}\n'
    assert headers(write(tmp_path / "a.json-lines", text)) == ["id", "name", "address.city"]


def test_files_are_closed_when_iteration_stops_early(tmp_path):
    path = write(tmp_path / "a.csv", "a\n1\n2\n")
    rows = read_file(path)
    assert next(rows).values == {"a": "1"}
    del rows  # a ResourceWarning here would fail the test (warnings are errors)
