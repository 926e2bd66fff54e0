"""Read CSV and JSON Lines files into raw rows; a broken row is reported, never dropped."""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CSV_SUFFIXES = frozenset({".csv", ".tsv", ".txt"})
JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson", ".json-lines"})
DELIMITERS = (",", ";", "\t", "|")
# On a tie, German habits decide: Excel writes ";" there, and "," is the decimal separator.
_BY_PREFERENCE = (";", "\t", ",", "|")
_CHUNK = 1 << 20
_SNIFF_CHARS = 64 * 1024
# Bytes that cp1252 leaves undefined: a file holding them was written as latin-1.
_CP1252_UNDEFINED = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")
_EXCEL_SEP_LINE = re.compile(r"^sep=(.)\r?\n")  # Excel's "sep=;" first line names the delimiter
_JSONL_HEADER_SAMPLE = 100

# A spreadsheet cell may hold far more than the csv module's default limit of 128 KiB.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


class ReadError(ValueError):
    """The whole file is unusable: empty, binary, without header, or of an unknown format."""


@dataclass(frozen=True, slots=True)
class RawRow:
    line_no: int  # 1-based physical line where the row starts; a CSV header is line 1
    values: dict[str, str] | None
    text: str | None  # the raw row, when it could not be parsed
    error: str | None  # why it could not be parsed


# --- encoding -------------------------------------------------------------------------------


def detect_encoding(path: Path) -> str:
    """utf-8-sig (BOM), utf-16 (BOM, Excel's "Unicode text"), utf-8, else cp1252 or latin-1."""
    with open(path, "rb") as file:
        head = file.read(_CHUNK)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        if not head.removeprefix(codecs.BOM_UTF8).strip():
            raise ReadError(f"{path}: the file is empty")
        if b"\x00" in head:
            raise ReadError(f"{path}: this is a binary file, not CSV or JSON Lines")
        encoding = _text_encoding(itertools.chain([head], iter(lambda: file.read(_CHUNK), b"")))
    if head.startswith(codecs.BOM_UTF8):
        if encoding != "utf-8":
            raise ReadError(f"{path}: starts with a UTF-8 mark but is not UTF-8 throughout")
        return "utf-8-sig"
    return encoding


def _text_encoding(chunks: Iterable[bytes]) -> str:
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8, undefined_in_cp1252 = True, False
    for chunk in chunks:
        if utf8:
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                utf8 = False
        undefined_in_cp1252 = undefined_in_cp1252 or bool(_CP1252_UNDEFINED.search(chunk))
        if not utf8 and undefined_in_cp1252:
            return "latin-1"
    if utf8:
        try:
            decoder.decode(b"", final=True)  # a multi-byte sequence cut off at the very end
            return "utf-8"
        except UnicodeDecodeError:
            pass
    return "latin-1" if undefined_in_cp1252 else "cp1252"


# --- format and delimiter -------------------------------------------------------------------


def sniff_delimiter(sample: str) -> str:
    """The delimiter that splits the header into columns and the next lines alike."""
    if "\n" in sample.rstrip("\r\n"):
        sample = sample[: sample.rindex("\n") + 1]  # the last line may be cut off mid-row
    scores = {delimiter: _delimiter_score(sample, delimiter) for delimiter in _BY_PREFERENCE}
    best = max(_BY_PREFERENCE, key=lambda delimiter: scores[delimiter])
    return best if scores[best][0] else ","


def _delimiter_score(sample: str, delimiter: str) -> tuple[bool, float, int]:
    """(splits the header at all, share of the next rows as wide as the header, header width)."""
    reader = csv.reader(io.StringIO(sample), delimiter=delimiter)
    rows = [row for row in itertools.islice(reader, 50) if row]
    if not rows:
        return False, 0.0, 0
    width = len(rows[0])
    following = rows[1:]
    if not following:
        return width > 1, 1.0, width
    return width > 1, sum(len(row) == width for row in following) / len(following), width


def _read_text(path: Path, encoding: str, size: int = _SNIFF_CHARS) -> str:
    with open(path, encoding=encoding, newline="") as file:
        return file.read(size)


def _is_jsonl(path: Path, encoding: str) -> bool:
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return True
    if suffix in CSV_SUFFIXES:
        return False
    start = _read_text(path, encoding).lstrip("\ufeff \t\r\n")[:1]
    if start == "[":
        raise ReadError(f"{path}: a JSON array; write one object per line (JSON Lines) instead")
    return start == "{"


# --- CSV ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _CsvLayout:
    encoding: str
    delimiter: str
    skip_lines: int  # Excel's "sep=;" line before the header


def _csv_layout(path: Path, encoding: str) -> _CsvLayout:
    sample = _read_text(path, encoding).lstrip("\ufeff")
    if match := _EXCEL_SEP_LINE.match(sample):
        return _CsvLayout(encoding, match[1], 1)
    if path.suffix.lower() == ".tsv":
        return _CsvLayout(encoding, "\t", 0)
    delimiter = sniff_delimiter(sample)
    if path.suffix.lower() not in CSV_SUFFIXES and not _delimiter_score(sample, delimiter)[0]:
        raise ReadError(f"{path}: unknown format: neither JSON Lines nor a delimited table")
    return _CsvLayout(encoding, delimiter, 0)


def _column_names(header: list[str]) -> list[str]:
    """Stripped header names; a blank one is named by position, a repeated one gets "_2"."""
    names: list[str] = []
    taken: set[str] = set()
    for index, raw in enumerate(header, start=1):
        base = raw.strip().lstrip("\ufeff").strip() or f"column_{index}"
        name, suffix = base, 1
        while name in taken:
            suffix += 1
            name = f"{base}_{suffix}"
        names.append(name)
        taken.add(name)
    return names


def _header_row(file: io.TextIOBase, layout: _CsvLayout) -> tuple[Any, list[str] | None]:
    """A csv reader placed after the header, and the header (None: the file has no rows)."""
    for _ in range(layout.skip_lines):
        file.readline()
    reader = csv.reader(file, delimiter=layout.delimiter)
    for row in reader:
        if row and (len(row) > 1 or row[0].strip()):
            return reader, row
    return reader, None


def _csv_header(path: Path, layout: _CsvLayout) -> list[str]:
    with open(path, encoding=layout.encoding, newline="") as file:
        header = _header_row(file, layout)[1]
    if header is None or not any(field.strip() for field in header):
        raise ReadError(f"{path}: no header line with column names")
    return _column_names(header)


def _csv_rows(path: Path, layout: _CsvLayout) -> Iterator[RawRow]:
    # One flat loop: this runs for every row of files with millions of them.
    with open(path, encoding=layout.encoding, newline="") as file:
        reader, header = _header_row(file, layout)
        names = _column_names(header or [])
        width, strip, offset = len(names), str.strip, layout.skip_lines
        line = reader.line_num + offset
        for row in reader:
            start, line = line + 1, reader.line_num + offset
            if len(row) != width:
                if odd := _odd_row(start, row, names, layout.delimiter):
                    yield odd
                continue
            values = dict(zip(names, map(strip, row)))  # noqa: B905 (widths checked above)
            if any(values.values()):
                yield RawRow(start, values, None, None)


def _odd_row(line_no: int, row: list[str], names: list[str], delimiter: str) -> RawRow | None:
    """A row of another width: blank (skipped), trailing empty cells (fine), or an error."""
    cells = [cell.strip() for cell in row]
    if not any(cells):  # a blank line, or one of delimiters only
        return None
    if len(cells) > len(names) and not any(cells[len(names) :]):
        return RawRow(line_no, dict(zip(names, cells, strict=False)), None, None)
    error = f"expected {len(names)} fields, found {len(row)}"
    return RawRow(line_no, None, delimiter.join(row), error)


# --- JSON Lines -----------------------------------------------------------------------------


def flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """{"address": {"street": "…"}} -> {"address.street": "…"}; lists stay JSON, nulls go."""
    flat: dict[str, str] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if value is None:
            continue
        if isinstance(value, dict):
            flat |= flatten(value, f"{name}.")
        elif isinstance(value, list):
            flat[name] = json.dumps(value, ensure_ascii=False)
        elif isinstance(value, bool):
            flat[name] = "true" if value else "false"
        elif isinstance(value, str):
            flat[name] = value.strip()
        else:
            flat[name] = str(value)
    return flat


def _json_row(line_no: int, text: str) -> RawRow:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return RawRow(line_no, None, text, f"invalid JSON: {exc}")
    if not isinstance(obj, dict):
        return RawRow(line_no, None, text, f"invalid JSON: expected an object, found {text[:1]!r}")
    return RawRow(line_no, flatten(obj), None, None)


def _jsonl_rows(path: Path, encoding: str) -> Iterator[RawRow]:
    with open(path, encoding=encoding) as file:
        for line_no, line in enumerate(file, start=1):
            text = line.rstrip("\r\n").lstrip("\ufeff")
            if text.strip():
                yield _json_row(line_no, text)


# --- the entry points -----------------------------------------------------------------------


def read_file(path: Path) -> Iterator[RawRow]:
    """Rows of a CSV or JSON Lines file; raises ReadError at once when the file is unusable."""
    path = Path(path)
    encoding = detect_encoding(path)
    if _is_jsonl(path, encoding):
        return _jsonl_rows(path, encoding)
    layout = _csv_layout(path, encoding)
    _csv_header(path, layout)  # fail now, not at the first next()
    return _csv_rows(path, layout)


def headers(path: Path) -> list[str]:
    """The CSV header, or the keys of the first JSON Lines objects in order of appearance."""
    path = Path(path)
    encoding = detect_encoding(path)
    if not _is_jsonl(path, encoding):
        return _csv_header(path, _csv_layout(path, encoding))
    names: dict[str, None] = {}
    objects = (row for row in _jsonl_rows(path, encoding) if row.values is not None)
    for row in itertools.islice(objects, _JSONL_HEADER_SAMPLE):
        names |= dict.fromkeys(row.values or {})
    return list(names)
