"""Art. 15 export and Art. 17 erasure on both databases, traced through every table."""

from __future__ import annotations

import json

import orjson
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from relata.config import Settings
from relata.consent import erasure, gdpr
from relata.consent import service as consent
from relata.consent.errors import CustomerErased, CustomerMerged, CustomerNotFound, SecretMismatch
from relata.consent.person import source_key
from relata.db import Base
from relata.events import service as events
from relata.events.api import parse
from relata.events.models import Event
from relata.identity import service as identity
from relata.identity.models import Identifier, Merge
from relata.ingest.models import QuarantineEntry, SourceRecord
from relata.ingest.service import Rejected, quarantine
from relata.ingest.sources import require_source
from relata.profiles.models import Customer, Holding
from tests.helpers import make_source, put, rec

# Markers that appear nowhere but in Anna's data, so a dump can be searched for them.
TRACES = ("anna", "schulz", "1711234567", "ord-9911", "anon-7f3e", "user-5b2c", "k-4471")


def send(db, settings, *messages: dict) -> events.Ingested:
    with db.session() as session:
        return events.ingest(session, parse(list(messages)).batch, settings)


def park(db, source: str, raw: dict, reason: str = "impossible date") -> None:
    with db.session() as session:
        text = orjson.dumps(raw, option=orjson.OPT_SORT_KEYS).decode()
        quarantine(
            session,
            require_source(session, source),
            "kunden.csv",
            [Rejected(7, "row", text, reason)],
        )


@pytest.fixture
def anna(db, settings) -> dict[str, int]:
    """Anna: two shop records merged into one customer, a newsletter record, web events,
    an order, a consent, a quarantined row. Bernd beside her, who must stay untouched."""
    make_source(db, "shop", trust=80)
    make_source(db, "newsletter", "newsletter", trust=40)
    shop = put(
        db,
        settings,
        "shop",
        rec(
            "K-4471",
            first_name="Anna",
            last_name="Schulz",
            email="anna@example.de",
            phone="+491711234567",
            customer_number="K-4471",
        ),
        rec("K-4472", first_name="Anna", last_name="Schulz", email="anna.s@example.de"),
        rec("K-5000", first_name="Bernd", last_name="Meier", email="bernd@example.de"),
    )
    a, b, bernd = (shop.customer_of[k] for k in ("K-4471", "K-4472", "K-5000"))
    put(db, settings, "newsletter", rec("NL-1", first_name="Anna", email="anna@example.de"))
    with db.session() as session:
        identity.merge_customers(session, a, b, "same person (test)", settings)
    send(
        db,
        settings,
        {
            "type": "identify",
            "userId": "user-5b2c",
            "anonymousId": "anon-7f3e",
            "traits": {"email": "anna@example.de"},
            "messageId": "m1",
        },
        {
            "type": "track",
            "userId": "user-5b2c",
            "event": "Order Completed",
            "messageId": "m2",
            "context": {"ip": "198.51.100.7"},
            "properties": {
                "order_id": "ORD-9911",
                "products": [{"product_id": "P1", "price": 9.5}],
            },
        },
        {"type": "page", "anonymousId": "anon-7f3e", "name": "Home", "messageId": "m3"},
        {
            "type": "identify",
            "userId": "bernd-1",
            "traits": {"email": "bernd@example.de"},
            "messageId": "m4",
        },
    )
    with db.session() as session:
        consent.record(
            session,
            settings,
            a,
            "marketing",
            "email",
            "grant",
            via="api",
            evidence={"ip": "198.51.100.7", "form": "Anna's sign-up"},
        )
        consent.request_opt_in(session, settings, a, "marketing", "sms")
    park(db, "shop", {"KundenNr": "K-9", "E-Mail": "Anna@Example.de", "Geb": "31.02.1990"})
    park(db, "shop", {"KundenNr": "K-4471", "Geb": "99.99.1999"})
    park(db, "shop", {"KundenNr": "K-9000", "E-Mail": "bernd@example.de", "Geb": "31.02.1990"})
    with db.session(write=False) as session:
        assert identity.resolve_id(session, b) == a
        assert identity.resolve_id(session, bernd) == bernd
    return {"a": a, "b": b, "bernd": bernd}


def dump(db) -> str:
    """Every row of every table, as one lower-case text."""
    rows = []
    with db.session(write=False) as session:
        for table in Base.metadata.sorted_tables:
            rows += [dict(r._mapping) for r in session.execute(select(table))]
    return json.dumps(rows, default=str, ensure_ascii=False).lower()


# --- Art. 15 --------------------------------------------------------------------------------


def test_the_export_holds_everything_about_the_person_and_nothing_about_others(db, settings, anna):
    with db.session(write=False) as session:
        doc = gdpr.export(session, anna["b"], settings)  # the merged-away id: the person
    assert doc["customer_id"] == anna["a"] and doc["requested_id"] == anna["b"]
    assert doc["golden_record"]["email"] in ("anna@example.de", "anna.s@example.de")
    assert doc["golden_record"]["provenance"]["email"]["source"] in ("shop", "newsletter", "web")
    assert [c["id"] for c in doc["merged_customers"]] == [anna["b"]]
    assert {(r["source"], r["source_key"]) for r in doc["source_records"]} == {
        ("shop", "K-4471"),
        ("shop", "K-4472"),
        ("newsletter", "NL-1"),
        ("web", "user-5b2c"),
    }
    assert ("anonymous_id", "anon-7f3e") in {(i["kind"], i["value"]) for i in doc["identifiers"]}
    names = [e["name"] for e in doc["events"]]
    assert "Order Completed" in names and "Customer Merged" in names
    assert doc["holdings"][0]["reference"] == "ORD-9911"
    ledger = doc["consents"]["ledger"]
    assert [(e["action"], e["channel"]) for e in ledger] == [("grant", "email"), ("request", "sms")]
    assert ledger[0]["evidence"]["form"] == "Anna's sign-up"
    assert {(c["channel"], c["status"]) for c in doc["consents"]["current"]} == {
        ("email", "granted"),
        ("sms", "pending"),
    }
    assert "token_hash" not in doc["consents"]["confirmations"][0]
    assert [m["reason"] for m in doc["merges"]] == ["same person (test)"]
    raws = sorted(q["raw"] for q in doc["quarantine"])
    assert len(raws) == 2 and all("bernd" not in r for r in raws)
    text = json.dumps(doc, ensure_ascii=False).lower()
    assert "bernd" not in text and "k-5000" not in text
    json.loads(json.dumps(doc))  # plain JSON all the way down


def test_an_unknown_or_erased_customer_has_no_export(db, settings, anna):
    with db.session(write=False) as session, pytest.raises(CustomerNotFound):
        gdpr.export(session, 9999, settings)
    with db.session() as session:
        erasure.erase(session, anna["a"], settings)
    with db.session(write=False) as session, pytest.raises(CustomerErased):
        gdpr.export(session, anna["a"], settings)


# --- Art. 17 --------------------------------------------------------------------------------


def test_erasure_leaves_no_trace_of_the_person_anywhere(db, settings, anna):
    assert all(t in dump(db) for t in TRACES)
    with db.session() as session:
        report = erasure.erase(session, anna["a"], settings).as_dict()
    assert report["merged_ids"] == [anna["b"]]
    assert report["quarantine"] == 2 and report["merges"] == 1 and report["holdings"] == 1
    text = dump(db)
    assert [t for t in TRACES if t in text] == []
    with db.session(write=False) as session:
        for cid in (anna["a"], anna["b"]):
            c = session.get(Customer, cid)
            assert c.status == "erased" and c.email is None and c.provenance == {}
        assert not session.scalars(
            select(SourceRecord).where(SourceRecord.customer_id == anna["a"])
        ).all()
        assert not session.scalars(
            select(Identifier).where(Identifier.customer_id == anna["a"])
        ).all()
        names = [
            e.name for e in session.scalars(select(Event).where(Event.customer_id == anna["a"]))
        ]
        assert "Order Completed" in names and "Customer Erased" in names  # the skeleton stays
        assert session.scalar(select(Holding.reference)).startswith("erased-")
        log = session.scalar(select(Merge))
        assert log.reason == "erased"
        assert log.before == {
            "survivor": {"id": anna["a"], "erased": True},
            "merged": {"id": anna["b"], "erased": True},
        }
        assert not consent.may_use(session, anna["a"], "marketing", "email", settings)


def test_erasure_leaves_everyone_else_as_they_were(db, settings, anna):
    with db.session(write=False) as session:
        before = gdpr.export(session, anna["bernd"], settings)
    with db.session() as session:
        erasure.erase(session, anna["a"], settings)
    with db.session(write=False) as session:
        after = gdpr.export(session, anna["bernd"], settings)
        remaining = session.scalars(select(QuarantineEntry.raw)).all()
    before.pop("generated_at"), after.pop("generated_at")
    assert after == before
    assert len(remaining) == 1 and "bernd" in remaining[0]


def test_tombstones_recognise_the_person_and_nobody_else(db, settings, anna):
    with db.session(write=False) as session:
        assert consent.erased(session, [("email", "anna@example.de")], settings) == set()
    with db.session() as session:
        erasure.erase(session, anna["a"], settings)
    theirs = [
        ("email", "anna@example.de"),
        ("email", "anna.s@example.de"),
        ("phone", "+491711234567"),
        ("customer_number", "K-4471"),
        ("anonymous_id", "anon-7f3e"),
        source_key("shop", "K-4471"),
        source_key("newsletter", "NL-1"),
        source_key("web", "user-5b2c"),
    ]
    others = [("email", "bernd@example.de"), source_key("shop", "K-5000"), ("email", "x@y.de")]
    with db.session(write=False) as session:
        assert consent.erased(session, theirs + others, settings) == set(theirs)
        keys = consent.erasure_keys("shop", "K-4471", {"email": "new@example.de"})
        assert consent.erased(session, keys, settings) == {source_key("shop", "K-4471")}


def test_events_of_an_erased_person_are_quarantined_not_stored(db, settings, anna):
    with db.session() as session:
        erasure.erase(session, anna["a"], settings)
    with db.session(write=False) as session:
        customers = session.scalar(select(Customer.id).order_by(Customer.id.desc()))
    done = send(
        db,
        settings,
        {"type": "page", "anonymousId": "anon-7f3e", "messageId": "n1"},
        {"type": "track", "userId": "user-5b2c", "event": "Clicked", "messageId": "n2"},
        {
            "type": "identify",
            "userId": "someone-new",
            "traits": {"email": "ANNA@example.de"},
            "messageId": "n3",
        },
        {"type": "page", "anonymousId": "fresh-visitor", "messageId": "n4"},
    )
    assert (done.accepted, done.quarantined) == (1, 3)
    with db.session(write=False) as session:
        reasons = session.scalars(select(QuarantineEntry.reason)).all()
        assert reasons.count("erased") == 3
        # Only the fresh visitor got a profile.
        assert session.scalar(select(Customer.id).order_by(Customer.id.desc())) == customers + 1


def test_erasure_is_one_transaction(db, settings, anna, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(erasure, "_empty_customers", fail)
    before = dump(db)
    with pytest.raises(RuntimeError), db.session() as session:
        erasure.erase(session, anna["a"], settings)
    assert dump(db) == before


def test_what_cannot_be_erased_is_refused(db, settings, anna):
    with db.session() as session, pytest.raises(CustomerMerged, match=f"use {anna['a']}"):
        erasure.erase(session, anna["b"], settings)
    with db.session() as session, pytest.raises(CustomerNotFound):
        erasure.erase(session, 123456, settings)
    with db.session() as session:
        erasure.erase(session, anna["a"], settings)
    with db.session() as session, pytest.raises(CustomerErased):
        erasure.erase(session, anna["a"], settings)


def test_a_changed_salt_is_refused_rather_than_letting_the_erased_come_back(db, anna):
    first = Settings(database_url=db.url, erasure_salt=SecretStr("s" * 40))
    with db.session() as session:
        erasure.erase(session, anna["a"], first)
    with db.session(write=False) as session:
        assert consent.erased(session, [("email", "anna@example.de")], first)
    for changed in (
        Settings(database_url=db.url, erasure_salt=SecretStr("t" * 40)),
        Settings(database_url=db.url),
    ):
        with db.session(write=False) as session, pytest.raises(SecretMismatch):
            consent.erased(session, [("email", "anna@example.de")], changed)


def test_an_erased_merge_cannot_be_undone_into_a_customer_again(db, settings, anna):
    with db.session(write=False) as session:
        merge_id = session.scalar(select(Merge.id))
    with db.session() as session:
        erasure.erase(session, anna["a"], settings)
    with db.session() as session, pytest.raises(identity.MergeError, match="no longer merged"):
        identity.unmerge(session, merge_id, settings)
    with db.session(write=False) as session:
        assert session.get(Customer, anna["b"]).status == "erased"


# Tables of other domains that name a customer. Erasure deletes their rows (or keeps them,
# if they hold nothing but the id) and the export lists them: a new one must be looked at.
EXPECTED_OTHER_TABLES = {
    "audit_log": "kept",
    "decision_responses": "deleted",
    "decisions": "deleted",
    "match_keys": "deleted",
    "match_rejections": "deleted",
    "match_reviews": "deleted",
    "segment_memberships": "deleted",
}


def test_every_table_about_a_customer_is_known_to_the_gdpr_code():
    from relata.consent.person import kept_on_erasure, other_tables

    found = {t.name: "kept" if kept_on_erasure(t) else "deleted" for t, _ in other_tables()}
    assert found == EXPECTED_OTHER_TABLES, (
        "a table that refers to customers appeared or changed: check that deleting its rows "
        "on erasure is right (or mark it __table_args__ info {'erasure': 'keep'}), then "
        "update EXPECTED_OTHER_TABLES"
    )


def test_the_audit_log_outlives_an_erasure(db, settings, anna):
    from relata.auth.models import AuditEntry

    with db.session() as session:
        session.add(
            AuditEntry(
                actor_kind="user",
                actor_id=1,
                actor_name="dpo",
                action="read",
                method="GET",
                route="/v1/customers/{customer_id}",
                customer_id=anna["a"],
                status=200,
            )
        )
    with db.session() as session:
        erasure.erase(session, anna["a"], settings)
    with db.session(write=False) as session:
        assert session.scalar(select(AuditEntry.customer_id)) == anna["a"]


def test_an_erased_customer_answers_gone_in_the_api_the_web_and_the_cli(
    db, settings, anna, client, monkeypatch
):
    from typer.testing import CliRunner

    from relata.cli import app

    with db.session() as session:
        erasure.erase(session, anna["a"], settings)
    answer = client.get(f"/v1/customers/{anna['a']}")
    assert answer.status_code == 410
    assert "erased" in answer.json()["detail"]
    page = client.get(f"/customers/{anna['a']}", headers={"accept": "text/html"})
    assert page.status_code == 410
    assert "Anna" not in page.text
    monkeypatch.setenv("RELATA_DATABASE_URL", db.url)
    from relata.config import get_settings

    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["customers", "show", str(anna["a"])])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "erased" in result.output
