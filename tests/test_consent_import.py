"""Consent columns of imported files: recognised, read strictly, and written only on change."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from relata.consent import service as consent
from relata.consent.errors import ConsentError
from relata.consent.service import ImportedConsent
from relata.db import utcnow
from relata.identity import service as identity
from relata.ingest.mapping import (
    Mapping,
    MappingError,
    apply_mapping,
    consent_value,
    guess_mapping,
    mapping_problems,
)
from tests.helpers import make_source, put, rec

# --- the mapping (pure) ---------------------------------------------------------------------


def test_consent_columns_are_recognised_before_fields():
    mapping = guess_mapping(
        ["KdNr", "Vorname", "E-Mail", "Newsletter", "SMS Opt-in", "Werbung Post"]
    )
    assert mapping.consents == {
        "marketing:email": "Newsletter",
        "marketing:sms": "SMS Opt-in",
        "marketing:post": "Werbung Post",
    }
    assert mapping.fields["email"] == "E-Mail"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("ja", (True, None)),
        (" Yes ", (True, None)),
        ("X", (True, None)),
        ("opt-in", (True, None)),
        ("nein", (False, None)),
        ("0", (False, None)),
        ("widerrufen", (False, None)),
        ("01.03.2024", (True, date(2024, 3, 1))),
        ("2024-03-01T09:30:00Z", (True, date(2024, 3, 1))),
        ("", None),
        ("   ", None),
    ],
)
def test_consent_values(text, value):
    assert consent_value(text) == value


@pytest.mark.parametrize("text", ["vielleicht", "2", "31.02.2024", "yes please"])
def test_an_unreadable_consent_quarantines_the_row(text):
    mapping = Mapping(("Id",), {"first_name": "Name"}, {"marketing:email": "NL"})
    with pytest.raises(MappingError, match="consent column 'NL'"):
        apply_mapping(mapping, {"Id": "1", "Name": "A", "NL": text})


def test_a_mapping_file_names_consent_columns():
    mapping = Mapping.from_json(
        {"source_key": "Id", "fields": {"email": "Mail"}, "consents": {"profiling:web": "Track"}}
    )
    assert Mapping.from_json(mapping.to_json()) == mapping
    row = apply_mapping(mapping, {"Id": "7", "Mail": "a@b.de", "Track": "nein"})
    assert row.consents == {"profiling:web": (False, None)}
    assert row.attributes["Track"] == "nein"  # kept as delivered, too
    assert mapping_problems(mapping, ["Id", "Mail"]) == [
        "column 'Track' (consent profiling:web) is not in the file"
    ]
    for bad, message in (
        ({"marketing": "NL"}, "must be 'purpose:channel'"),
        ({"marketing:fax": "NL"}, "must be 'purpose:channel'"),
        ({"marketing:email": ""}, "must name a column"),
    ):
        with pytest.raises(MappingError, match=message):
            Mapping((), {"email": "Mail"}, bad)
    with pytest.raises(MappingError, match="'consents' must be a table"):
        Mapping.from_json({"fields": {}, "consents": ["NL"]})


# --- the ledger entries (storage) -----------------------------------------------------------


def row(cid: int, key: str, granted: bool, on: date | None = None, at=None) -> ImportedConsent:
    return ImportedConsent(cid, "shop", key, {"marketing:email": (granted, on)}, at or utcnow())


def imported(db, settings, *rows: ImportedConsent) -> int:
    with db.session() as session:
        return consent.record_from_import(session, list(rows), settings)


def may(db, settings, cid) -> bool:
    with db.session(write=False) as session:
        return consent.may_use(session, cid, "marketing", "email", settings)


@pytest.fixture
def shop(db, settings) -> tuple[int, int]:
    make_source(db, "shop")
    done = put(db, settings, "shop", rec("K1", first_name="Ada"), rec("K2", first_name="Bo"))
    return done.customer_of["K1"], done.customer_of["K2"]


def test_the_same_file_twice_adds_nothing(db, settings, shop):
    a, b = shop
    assert imported(db, settings, row(a, "K1", True), row(b, "K2", False)) == 2
    assert imported(db, settings, row(a, "K1", True), row(b, "K2", False)) == 0
    assert may(db, settings, a) and not may(db, settings, b)
    assert imported(db, settings, row(a, "K1", False)) == 1  # a change is recorded
    assert not may(db, settings, a)


def test_a_stale_yes_in_the_next_file_does_not_undo_an_unsubscribe(db, settings, shop):
    a, _ = shop
    imported(db, settings, row(a, "K1", True, at=utcnow() - timedelta(days=3)))
    with db.session() as session:
        consent.record(session, settings, a, "marketing", "email", "revoke", via="link")
    assert imported(db, settings, row(a, "K1", True)) == 0
    assert not may(db, settings, a)
    # The shop records a new opt-in (a no, then a yes): that is news, and it is newer.
    imported(db, settings, row(a, "K1", False))
    imported(db, settings, row(a, "K1", True))
    assert may(db, settings, a)


def test_the_day_in_the_file_is_when_it_happened(db, settings, shop):
    a, _ = shop
    imported(db, settings, row(a, "K1", True, on=date(2024, 3, 1)))
    with db.session(write=False) as session:
        [entry] = consent.entries(session, a)
    assert entry.occurred_at == datetime(2024, 3, 1, tzinfo=UTC)
    assert (entry.via, entry.source, entry.source_key) == ("import", "shop", "K1")


def test_an_import_grant_of_one_side_does_not_outweigh_the_other_sides_revocation(
    db, settings, shop
):
    a, b = shop
    with db.session() as session:
        consent.record(
            session,
            settings,
            b,
            "marketing",
            "email",
            "revoke",
            via="api",
            occurred_at=utcnow() - timedelta(days=1),
        )
        merge_id = identity.merge(session, a, b, "test")
    imported(db, settings, row(a, "K1", True))
    assert not may(db, settings, a)
    with db.session() as session:
        identity.unmerge(session, merge_id, settings)
    assert may(db, settings, a)


def test_unknown_purposes_in_a_mapping_are_refused(db, settings, shop):
    a, _ = shop
    bad = ImportedConsent(a, "shop", "K1", {"lottery:email": (True, None)}, utcnow())
    with db.session() as session, pytest.raises(ConsentError, match="unknown purpose 'lottery'"):
        consent.record_from_import(session, [bad], settings)
