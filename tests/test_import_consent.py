"""A file's consent columns reach the ledger; an erased person's rows stay in quarantine."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from relata.consent import erasure
from relata.consent import service as consent
from relata.consent.models import ConsentEntry
from relata.ingest.models import QuarantineEntry, SourceRecord
from relata.ingest.service import FileImportError, import_file, retry_quarantine
from tests.helpers import make_source

FILE = (
    "Kundennummer;Vorname;Nachname;E-Mail;Newsletter\n"
    "K1;Jürgen;Müller;juergen@web.de;ja\n"
    "K2;Anna;Groß;anna@gmx.de;nein\n"
    "K3;Eva;Weiß;eva@t-online.de;\n"
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("cp1252"))
    return path


def customer_of(db, number: str) -> int:
    with db.session(write=False) as s:
        return s.scalar(select(SourceRecord.customer_id).where(SourceRecord.source_key == number))


def test_consent_columns_of_a_file_reach_the_ledger_once(db, settings, tmp_path):
    make_source(db, "shop")
    path = write(tmp_path, "kunden.csv", FILE)
    import_file(db, path, "shop", settings)
    import_file(db, path, "shop", settings)  # the same file again says nothing new
    with db.session(write=False) as s:
        juergen, anna, eva = (customer_of(db, k) for k in ("K1", "K2", "K3"))
        assert consent.state_of(s, juergen, "marketing", "email", settings).status == "granted"
        assert consent.state_of(s, anna, "marketing", "email", settings).status == "revoked"
        assert consent.state_of(s, eva, "marketing", "email", settings).status == "unknown"
        assert len(s.scalars(select(ConsentEntry)).all()) == 2


def test_a_mapping_naming_an_unknown_purpose_is_refused_before_anything_is_stored(
    db, settings, tmp_path
):
    make_source(db, "shop")
    mapping = tmp_path / "m.toml"
    mapping.write_text(
        'source_key = "Kundennummer"\n[fields]\nemail = "E-Mail"\n'
        '[consents]\n"horoscopes:email" = "Newsletter"\n',
        encoding="utf-8",
    )
    try:
        import_file(db, write(tmp_path, "k.csv", FILE), "shop", settings, mapping)
    except FileImportError as exc:
        assert "horoscopes" in str(exc)
    else:
        raise AssertionError("an unknown purpose was accepted")
    assert customer_of(db, "K1") is None


def test_an_erased_person_is_quarantined_on_reimport_and_stays_there(db, settings, tmp_path):
    make_source(db, "shop")
    path = write(tmp_path, "kunden.csv", FILE)
    import_file(db, path, "shop", settings)
    with db.session() as s:
        erasure.erase(s, customer_of(db, "K1"), settings)
    # The same person again, under a new customer number but the same e-mail address.
    again = FILE.replace("K1;Jürgen", "K9;Jürgen")
    summary = import_file(db, write(tmp_path, "again.csv", again), "shop", settings)
    assert (summary.quarantined, summary.unchanged) == (1, 2)
    assert customer_of(db, "K9") is None
    with db.session(write=False) as s:
        entry = s.scalars(select(QuarantineEntry)).one()
        assert (entry.reason, entry.status) == ("erased", "open")
        assert "K9" in entry.raw  # under the file's own headers, ready for a retry
    retried = retry_quarantine(db, settings, "shop")
    assert (retried.resolved, retried.still_open, retried.reasons) == (0, 1, {"erased": 1})
    assert customer_of(db, "K9") is None
