"""Source records, deterministic stitching, golden records and merges, on both databases."""

from __future__ import annotations

from sqlalchemy import func, select

from relata.identity import service as identity
from relata.identity.models import Merge
from relata.ingest.models import SourceRecord
from relata.profiles.models import Customer
from relata.profiles.survivorship import unpack
from tests.helpers import make_source, put, rec


def customer(db, cid: int) -> Customer:
    with db.session(write=False) as s:
        c = s.get(Customer, cid)
        assert c is not None
        s.expunge(c)
    c.provenance = unpack(c.provenance)  # the stored form is packed
    return c


def test_records_sharing_a_strong_identifier_are_one_customer(db, settings):
    make_source(db, "shop", trust=80)
    make_source(db, "newsletter", "newsletter", trust=40)
    a = put(
        db, settings, "shop", rec("K1", first_name="Anna", last_name="Müller", email="anna@web.de")
    )
    b = put(db, settings, "newsletter", rec("anna@web.de", first_name="Anne", email="anna@web.de"))
    assert a.customer_of["K1"] == b.customer_of["anna@web.de"]
    c = customer(db, a.customer_of["K1"])
    # The shop is trusted more: its first name wins, and the provenance says so.
    assert c.first_name == "Anna"
    assert c.provenance["first_name"]["source"] == "shop"
    assert c.provenance["first_name"]["source_key"] == "K1"


def test_importing_the_same_records_again_changes_nothing(db, settings):
    make_source(db, "shop")
    first = put(db, settings, "shop", rec("K1", last_name="Meier"), rec("K2", last_name="Huber"))
    again = put(db, settings, "shop", rec("K1", last_name="Meier"), rec("K2", last_name="Huber"))
    assert (first.new, again.new, again.unchanged, again.updated) == (2, 0, 2, 0)
    with db.session(write=False) as s:
        assert s.scalar(select(func.count()).select_from(SourceRecord)) == 2
        assert s.scalar(select(func.count()).select_from(Customer)) == 2


def test_a_changed_record_updates_its_customer(db, settings):
    make_source(db, "shop")
    first = put(db, settings, "shop", rec("K1", last_name="Meier", city="Köln"))
    second = put(db, settings, "shop", rec("K1", last_name="Meier", city="Bonn"))
    assert second.updated == 1
    cid = first.customer_of["K1"]
    assert second.customer_of["K1"] == cid
    assert customer(db, cid).city == "Bonn"


def test_a_record_linking_two_customers_merges_them_and_unmerge_restores(db, settings):
    make_source(db, "shop", trust=80)
    make_source(db, "pos", "pos", trust=60)
    shop = put(
        db, settings, "shop", rec("K1", first_name="Anna", last_name="Schulz", email="a@gmx.de")
    )
    pos = put(
        db, settings, "pos", rec("C9", first_name="Anna", last_name="Schulz", loyalty_card="C9")
    )
    a, b = shop.customer_of["K1"], pos.customer_of["C9"]
    assert a != b
    # The hotline knows both the e-mail and the card: the two are one person.
    make_source(db, "hotline", "hotline")
    linked = put(
        db, settings, "hotline", rec("T1", last_name="Schulz", email="a@gmx.de", loyalty_card="C9")
    )
    assert linked.merged == 1
    survivor = linked.customer_of["T1"]
    assert survivor == min(a, b)
    merged = max(a, b)
    assert customer(db, merged).status == "merged"
    assert customer(db, merged).merged_into_id == survivor
    assert customer(db, survivor).loyalty_card == "C9"

    with db.session() as s:
        merge_id = s.scalar(select(Merge.id))
        done = identity.unmerge(s, merge_id, settings)
    assert done.restored_id == merged
    with db.session(write=False) as s:
        owners = dict(s.execute(select(SourceRecord.source_key, SourceRecord.customer_id)).all())
    assert owners["C9"] == b and owners["K1"] == a
    # The record that caused the merge arrived with the survivor and stays there.
    assert owners["T1"] == survivor
    assert customer(db, merged).status == "active"
    assert customer(db, merged).merged_into_id is None
    assert customer(db, b).loyalty_card == "C9"
    assert customer(db, b).provenance["loyalty_card"]["source"] == "pos"


def test_unmerge_twice_is_refused(db, settings):
    make_source(db, "shop")
    put(db, settings, "shop", rec("K1", last_name="A", email="x@y.de"))
    put(db, settings, "shop", rec("K2", last_name="A", customer_number="N1"))
    put(db, settings, "shop", rec("K3", last_name="A", email="x@y.de", customer_number="N1"))
    with db.session() as s:
        merge_id = s.scalar(select(Merge.id))
        identity.unmerge(s, merge_id, settings)
    import pytest

    with pytest.raises(identity.MergeError, match="already undone"), db.session() as s:
        identity.unmerge(s, merge_id, settings)


def test_survivorship_keeps_the_address_from_one_record(db, settings):
    make_source(db, "shop", trust=80)
    make_source(db, "pos", "pos", trust=60)
    put(db, settings, "shop", rec("K1", last_name="Kurz", email="k@x.de", city="Berlin"))
    r = put(
        db,
        settings,
        "pos",
        rec(
            "C1",
            last_name="Kurz",
            email="k@x.de",
            street="Hauptstraße",
            postcode="10115",
            city="Berlin",
        ),
    )
    c = customer(db, r.customer_of["C1"])
    # The shop is trusted more but knows only a city: a complete address wins, and it is
    # taken whole from one record, never stitched from two.
    assert (c.street, c.postcode, c.city) == ("Hauptstraße", "10115", "Berlin")
    assert c.provenance["street"]["source"] == c.provenance["city"]["source"] == "pos"


def test_many_processes_may_migrate_a_new_database_at_once(db, tmp_path):
    import subprocess
    import sys
    import uuid

    from sqlalchemy import create_engine, text

    if db.is_sqlite:
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        schema = f"fresh_{uuid.uuid4().hex[:8]}"
        base = db.url.split("?")[0]
        admin = create_engine(base)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        url = f"{base}?options=-csearch_path%3D{schema}"
    code = "import sys; from relata.db import Database; Database(sys.argv[1]).migrate()"
    procs = [subprocess.Popen([sys.executable, "-c", code, url]) for _ in range(3)]
    try:
        assert [p.wait(120) for p in procs] == [0, 0, 0]
    finally:
        if not db.is_sqlite:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


def test_a_batch_says_which_customers_it_created_and_which_it_changed(db, settings):
    make_source(db, "shop")
    first = put(db, settings, "shop", rec("K1", last_name="Meier", email="m@web.de"))
    meier = first.customer_of["K1"]
    assert (first.born, first.touched) == ([meier], {meier})
    second = put(
        db,
        settings,
        "shop",
        rec("K2", last_name="Meier", email="m@web.de"),  # joins Meier
        rec("K3", last_name="Huber"),  # a new customer
        rec("K1", last_name="Meier", email="m@web.de"),  # unchanged
    )
    huber = second.customer_of["K3"]
    assert second.customer_of["K2"] == meier
    assert second.born == [huber]
    assert second.touched == {meier, huber}
    again = put(db, settings, "shop", rec("K3", last_name="Huber"))
    assert (again.born, again.touched) == ([], set())
