"""The relata command as a user runs it: --json output, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from relata.cli import app
from relata.config import get_settings


@pytest.fixture
def relata(db, monkeypatch):
    monkeypatch.setenv("RELATA_DATABASE_URL", db.url)
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str, ok: bool = True):
        result = runner.invoke(app, list(args))
        if ok:
            assert result.exit_code == 0, (args, result.output, result.stderr)
        return result

    yield run
    get_settings.cache_clear()


def test_a_users_first_session(relata, tmp_path: Path):
    relata("init")
    relata("sources", "add", "shop", "--channel", "shop", "--trust", "80")
    relata("sources", "add", "pos", "--channel", "pos", "--trust", "60")
    assert [s["name"] for s in json.loads(relata("sources", "list", "--json").stdout)] == [
        "pos",
        "shop",
    ]

    shop = tmp_path / "shop.csv"
    shop.write_text(
        "Kundennummer,Vorname,Nachname,E-Mail,Telefon\n"
        "K1,Jürgen,Müller,jm@web.de,0171 1234567\n"
        "K2,Anna,Schulz,anna@gmx.de,\n",
        encoding="utf-8-sig",
    )
    pos = tmp_path / "pos.csv"
    pos.write_bytes(
        "Kartennummer;Name;Vorname;E-Mail\n99;Müller;Jürgen;JM@web.de\n;;;\n7;;;\n".encode("cp1252")
    )
    mapping = tmp_path / "pos.toml"
    mapping.write_text(
        'source_key = "Kartennummer"\n[fields]\nloyalty_card = "Kartennummer"\n'
        'last_name = "Name"\nfirst_name = "Vorname"\nemail = "E-Mail"\n'
    )

    summary = json.loads(relata("import", str(shop), "--source", "shop", "--json").stdout)
    assert summary["new"] == 2
    summary = json.loads(
        relata("import", str(pos), "--source", "pos", "--mapping", str(mapping), "--json").stdout
    )
    # A line of only delimiters is skipped; a card number alone is a usable record.
    assert (summary["new"], summary["quarantined"]) == (2, 0)

    found = json.loads(relata("customers", "search", "müller", "--json").stdout)
    assert len(found) == 1
    view = json.loads(relata("customers", "show", str(found[0]["id"]), "--json").stdout)
    assert {r["source"] for r in view["source_records"]} == {"shop", "pos"}
    assert view["customer"]["provenance"]["first_name"]["source"] == "shop"
    text = relata("customers", "show", str(found[0]["id"])).stdout
    assert "Jürgen Müller" in text and "shop:K1" in text

    links = tmp_path / "links.csv"
    relata("export", "links", "--out", str(links))
    rows = links.read_text().splitlines()
    assert rows[0] == "source,source_key,customer_id" and len(rows) == 1 + 4
    customers = tmp_path / "customers.csv"
    relata("export", "customers", "--out", str(customers))
    assert "Müller" in customers.read_text(encoding="utf-8")

    quarantined = json.loads(relata("quarantine", "list", "--json").stdout)
    assert all({"line", "reason", "raw", "source"} <= q.keys() for q in quarantined)
    assert json.loads(relata("merges", "list", "--json").stdout) == []


def test_merge_and_unmerge_from_the_command_line(relata, tmp_path: Path):
    relata("sources", "add", "shop", "--channel", "shop")
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("id,Nachname,E-Mail,Kundennummer\n1,Roth,r@x.de,\n2,Roth,,N7\n")
    second.write_text("id,Nachname,E-Mail,Kundennummer\n3,Roth,r@x.de,N7\n")
    relata("import", str(first), "--source", "shop")
    relata("import", str(second), "--source", "shop")
    merges = json.loads(relata("merges", "list", "--json").stdout)
    assert len(merges) == 1
    undone = json.loads(relata("unmerge", str(merges[0]["id"]), "--json").stdout)
    assert undone["restored_id"] == merges[0]["merged_id"]
    again = relata("unmerge", str(merges[0]["id"]), ok=False)
    assert again.exit_code == 1 and "already undone" in again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sources", "add", "x", "--channel", "fax"], "unknown channel"),
        (["sources", "add", "x", "--channel", "web", "--trust", "400"], "trust must be"),
        (["import", "missing.csv", "--source", "shop"], "no such file"),
        (["customers", "show", "424242"], "no customer with id 424242"),
        (["unmerge", "5"], "no merge with id 5"),
        (["quarantine", "list", "--status", "weird"], "unknown status"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_a_failing_exit_code(relata, args, message):
    result = relata(*args, ok=False)
    assert result.exit_code != 0
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_an_unreachable_database_is_one_line_too(monkeypatch):
    monkeypatch.setenv("RELATA_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["sources", "list"])
    get_settings.cache_clear()
    assert result.exit_code == 2 and "database unavailable" in result.stderr


def test_invalid_configuration_is_one_line_and_exit_code_2(monkeypatch):
    monkeypatch.setenv("RELATA_STRONG_IDENTIFIERS", '["fax"]')
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["sources", "list"])
    get_settings.cache_clear()
    assert result.exit_code == 2
    assert "invalid configuration" in result.stderr and "fax" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
