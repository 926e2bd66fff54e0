"""File imports end to end: idempotency, quarantine and retry, crash and rerun, concurrency."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from relata.identity.models import Identifier
from relata.ingest import service
from relata.ingest.models import QuarantineEntry, SourceRecord
from relata.ingest.records import RecordInput, upsert_records
from relata.ingest.service import FileImportError, import_file, retry_quarantine
from relata.ingest.sources import require_source
from relata.profiles.models import Customer
from tests.helpers import make_source

GERMAN = (
    "Kundennummer;Vorname;Nachname;E-Mail;Geburtsdatum;Straße;PLZ;Ort\n"
    "K1;Jürgen;Müller;J.Mueller@Web.de;31.12.1980;Hauptstr. 5a;1067;Dresden\n"
    "K2;Anna;Groß;anna@gmx.de;1975-02-01;Lindenweg 3;80331;München\n"
    "K3;Peter;Schmidt;;31.02.1980;;;\n"
    'K4;"Eva\nMaria";Weiß;eva@t-online.de;;;;\n'
)


def write(tmp_path: Path, name: str, text: str, encoding: str = "cp1252") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def count(db, model) -> int:
    with db.session(write=False) as s:
        return s.scalar(select(func.count()).select_from(model))


def test_a_german_cp1252_export_imports_with_quarantine_and_is_idempotent(db, settings, tmp_path):
    make_source(db, "shop")
    path = write(tmp_path, "kunden.csv", GERMAN)
    first = import_file(db, path, "shop", settings)
    assert (first.new, first.quarantined) == (3, 1)
    again = import_file(db, path, "shop", settings)
    assert (again.new, again.updated, again.unchanged, again.quarantined) == (0, 0, 3, 1)
    assert count(db, SourceRecord) == 3 and count(db, QuarantineEntry) == 1
    with db.session(write=False) as s:
        juergen = s.scalar(select(Customer).where(Customer.last_name == "Müller"))
        assert juergen.email == "j.mueller@web.de"
        assert (juergen.street, juergen.house_number, juergen.postcode) == (
            "Hauptstraße",
            "5a",
            "01067",
        )
        assert juergen.birth_date.isoformat() == "1980-12-31"
        eva = s.scalar(select(Customer).where(Customer.last_name == "Weiß"))
        assert eva.first_name == "Eva\nMaria" or eva.first_name == "Eva Maria"
        entry = s.scalar(select(QuarantineEntry))
        assert entry.line_no == 4 and "31.02.1980" in entry.reason and "Schmidt" in entry.raw


def test_a_changed_row_updates_the_record_and_golden_record(db, settings, tmp_path):
    make_source(db, "shop")
    import_file(db, write(tmp_path, "a.csv", GERMAN), "shop", settings)
    changed = GERMAN.replace("Lindenweg 3;80331;München", "Ringstraße 9;50667;Köln")
    summary = import_file(db, write(tmp_path, "b.csv", changed), "shop", settings)
    assert (summary.new, summary.updated, summary.unchanged) == (0, 1, 2)
    with db.session(write=False) as s:
        anna = s.scalar(select(Customer).where(Customer.last_name == "Groß"))
        assert (anna.city, anna.postcode) == ("Köln", "50667")


def test_quarantine_retry_after_fixing_the_mapping(db, settings, tmp_path):
    make_source(db, "coupon", "coupon")
    text = "Code,Wer,Mail\nC1,Anna Schulz,anna@x.de\nC2,,\n"
    path = write(tmp_path, "g.csv", text, "utf-8")
    mapping = write(
        tmp_path, "bad.toml", 'source_key = "Code"\n[fields]\nlast_name = "Wer"\n', "utf-8"
    )
    first = import_file(db, path, "coupon", settings, mapping)
    assert (first.new, first.quarantined) == (1, 1)
    assert retry_quarantine(db, settings, "coupon").still_open == 1
    # The mapping gains the e-mail column, but C2 has nothing at all: it stays.
    better = write(
        tmp_path,
        "good.toml",
        'source_key = "Code"\n[fields]\nlast_name = "Wer"\nemail = "Mail"\n',
        "utf-8",
    )
    import_file(db, path, "coupon", settings, better)
    result = retry_quarantine(db, settings, "coupon")
    assert (result.resolved, result.still_open) == (0, 1)


def test_retry_resolves_rows_once_the_mapping_is_fixed(db, settings, tmp_path):
    make_source(db, "hotline", "hotline")
    path = write(tmp_path, "h.csv", "Ticket;Anrufer;Telefon\nT1;Meier;0171 1234567\n", "utf-8")
    wrong = write(
        tmp_path, "w.toml", 'source_key = "Ticket"\n[fields]\nphone = "Telefon"\n', "utf-8"
    )
    # Only a phone is mapped: a phone alone is kept, so make the row fail on a bad phone instead.
    bad = write(tmp_path, "h2.csv", "Ticket;Anrufer;Telefon\nT2;Meier;12\n", "utf-8")
    assert import_file(db, bad, "hotline", settings, wrong).quarantined == 1
    fixed = write(
        tmp_path,
        "f.toml",
        'source_key = "Ticket"\n[fields]\nphone = "Telefon"\nlast_name = "Anrufer"\n',
        "utf-8",
    )
    import_file(db, path, "hotline", settings, fixed)
    result = retry_quarantine(db, settings)
    assert (result.resolved, result.still_open) == (1, 0)
    with db.session(write=False) as s:
        assert (
            s.scalar(select(SourceRecord.data).where(SourceRecord.source_key == "T2"))["last_name"]
            == "Meier"
        )
        assert s.scalar(select(QuarantineEntry.status)) == "resolved"


def test_an_import_that_dies_midway_can_simply_be_run_again(db, settings, tmp_path, monkeypatch):
    make_source(db, "shop")
    lines = ["Kundennummer,Nachname,E-Mail"] + [f"K{i},Name{i},p{i}@x.de" for i in range(50)]
    path = write(tmp_path, "big.csv", "\n".join(lines) + "\n", "utf-8")
    settings = settings.model_copy(update={"import_batch_size": 10})
    real = service.upsert_records
    calls = {"n": 0}

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("power cut")
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "upsert_records", dying)
    with pytest.raises(RuntimeError):
        import_file(db, path, "shop", settings)
    assert count(db, SourceRecord) == 20  # two whole batches, nothing of the third
    monkeypatch.setattr(service, "upsert_records", real)
    summary = import_file(db, path, "shop", settings)
    assert (summary.new, summary.unchanged) == (30, 20)
    assert count(db, SourceRecord) == 50 and count(db, Customer) == 50


def test_large_files_are_normalised_in_a_worker_with_the_same_result(
    db, settings, tmp_path, monkeypatch
):
    make_source(db, "shop")
    monkeypatch.setattr(service, "PARALLEL_FROM_BYTES", 0)
    settings = settings.model_copy(update={"import_batch_size": 2})
    summary = import_file(db, write(tmp_path, "k.csv", GERMAN), "shop", settings)
    assert (summary.new, summary.quarantined) == (3, 1)


def test_unusable_files_and_sources_fail_with_one_clear_message(db, settings, tmp_path):
    make_source(db, "shop")
    with pytest.raises(FileImportError, match="no such file"):
        import_file(db, tmp_path / "nope.csv", "shop", settings)
    empty = write(tmp_path, "empty.csv", "", "utf-8")
    with pytest.raises(FileImportError):
        import_file(db, empty, "shop", settings)
    unknown = write(tmp_path, "u.csv", "foo;bar\n1;2\n", "utf-8")
    with pytest.raises(FileImportError, match="no name or identifier is mapped"):
        import_file(db, unknown, "shop", settings)
    from relata.ingest.sources import SourceError

    with pytest.raises(SourceError, match="unknown source"):
        import_file(db, write(tmp_path, "k.csv", GERMAN), "nope", settings)


def test_concurrent_imports_never_create_two_customers_for_one_identifier(db, settings):
    make_source(db, "shop")
    make_source(db, "pos", "pos")
    emails = [f"person{i}@example.de" for i in range(200)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def load(source: str, prefix: str) -> None:
        try:
            barrier.wait()
            for start in range(0, len(emails), 50):
                with db.session() as s:
                    src = require_source(s, source)
                    batch = [
                        RecordInput(f"{prefix}{i}", {"last_name": "X", "email": e})
                        for i, e in enumerate(emails[start : start + 50], start)
                    ]
                    upsert_records(s, src, batch, settings)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=load, args=a) for a in (("shop", "S"), ("pos", "P"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    with db.session(write=False) as s:
        owners = s.execute(
            select(Identifier.value, func.count(func.distinct(Identifier.customer_id)))
            .where(Identifier.kind == "email")
            .group_by(Identifier.value)
        ).all()
        active = s.scalar(
            select(func.count()).select_from(Customer).where(Customer.status == "active")
        )
    assert len(owners) == 200 and all(n == 1 for _, n in owners)
    assert active == 200


def test_a_record_never_joins_a_customer_that_a_concurrent_batch_merges_away(db, settings):
    make_source(db, "shop")
    make_source(db, "pos", "pos")
    make_source(db, "hotline", "hotline")

    def put(session, source, *records):
        return upsert_records(session, require_source(session, source), list(records), settings)

    with db.session() as s:
        a = put(s, "shop", RecordInput("K1", {"last_name": "Roth", "email": "r@x.de"}))
        b = put(
            s,
            "pos",
            RecordInput("C9", {"last_name": "Roth", "loyalty_card": "C9", "customer_number": "N7"}),
        )
    survivor, merged = a.customer_of["K1"], b.customer_of["C9"]
    outcome: dict[str, int] = {}

    def attach_by_n7() -> None:
        with db.session() as s:
            r = put(s, "hotline", RecordInput("T1", {"last_name": "Roth", "customer_number": "N7"}))
            outcome["T1"] = r.customer_of["T1"]

    with db.session() as s:
        # This batch merges B into A and holds its transaction open while another
        # batch attaches a record through an identifier only B had.
        put(
            s,
            "hotline",
            RecordInput("T0", {"last_name": "Roth", "email": "r@x.de", "loyalty_card": "C9"}),
        )
        other = threading.Thread(target=attach_by_n7)
        other.start()
        other.join(0.5)
    other.join(30)
    assert outcome["T1"] == survivor != merged
    with db.session(write=False) as s:
        owner = s.scalar(select(SourceRecord.customer_id).where(SourceRecord.source_key == "T1"))
        assert s.get(Customer, owner).status == "active"


def test_retry_works_through_the_quarantine_batch_by_batch(db, settings, tmp_path):
    make_source(db, "hotline", "hotline")
    settings = settings.model_copy(update={"import_batch_size": 2})
    rows = "".join(f"T{i};Meier{i};12\n" for i in range(5))
    bad = write(tmp_path, "h.csv", "Ticket;Anrufer;Telefon\n" + rows, "utf-8")
    only_phone = write(
        tmp_path, "p.toml", 'source_key = "Ticket"\n[fields]\nphone = "Telefon"\n', "utf-8"
    )
    assert import_file(db, bad, "hotline", settings, only_phone).quarantined == 5
    fixed = write(
        tmp_path,
        "f.toml",
        'source_key = "Ticket"\n[fields]\nphone = "Telefon"\nlast_name = "Anrufer"\n',
        "utf-8",
    )
    ok = write(tmp_path, "ok.csv", "Ticket;Anrufer;Telefon\nX;Roth;0171 1234567\n", "utf-8")
    import_file(db, ok, "hotline", settings, fixed)
    result = retry_quarantine(db, settings, "hotline")
    assert (result.resolved, result.still_open) == (5, 0)
    assert count(db, SourceRecord) == 6
