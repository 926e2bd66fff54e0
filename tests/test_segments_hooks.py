"""Live segments after merges, unmerges, consent changes and rectification: each service
re-evaluates the customers it changed in its own transaction (no reevaluate call here)."""

from __future__ import annotations

from sqlalchemy import func, select

from relata.consent import service as consent
from relata.consent.erasure import erase
from relata.consent.rectify import rectify
from relata.identity.service import merge_customers, unmerge
from relata.profiles.models import Customer
from relata.segments.models import SegmentMembership
from tests.test_segments import people, save, settings  # noqa: F401  (fixture)


def open_members(db, segment: str) -> set[int]:
    with db.session(write=False) as session:
        from relata.segments import service

        sid = service.get(session, segment).id
        return set(
            session.scalars(
                select(SegmentMembership.customer_id).where(
                    SegmentMembership.segment_id == sid, SegmentMembership.left_at.is_(None)
                )
            )
        )


def test_a_merge_and_its_unmerge_move_memberships_at_once(db, settings):  # noqa: F811
    ids = people(db, settings)
    save(db, "berliner", 'city = "Berlin"')
    with db.session() as session:
        from relata.segments import service

        service.reevaluate(session, ids.values())
    assert open_members(db, "berliner") == {ids["B"]}
    with db.session() as session:
        merge_id = merge_customers(session, ids["A"], ids["B"], "test", settings)
    # the merged-away customer's stay is closed; the survivor follows its golden record
    with db.session(write=False) as session:
        city = session.get(Customer, ids["A"]).city
    assert city == "Berlin"  # Berta's address survives (same trust: survivorship._rank)
    assert open_members(db, "berliner") == {ids["A"]}
    with db.session() as session:  # and batch agrees with live: nothing to do
        assert [(r.entered, r.left) for r in service.refresh(session, ["berliner"])] == [(0, 0)]
    with db.session() as session:
        unmerge(session, merge_id, settings)
    assert open_members(db, "berliner") == {ids["B"]}


def test_consent_grant_revoke_opt_in_and_unsubscribe_are_live(db, settings):  # noqa: F811
    ids = people(db, settings)
    a = ids["A"]
    save(db, "werbung", 'consent.marketing.email = "granted"')
    with db.session() as session:
        consent.record(session, settings, a, "marketing", "email", "grant", via="api")
    assert open_members(db, "werbung") == {a}
    with db.session() as session:
        consent.record(session, settings, a, "marketing", "email", "revoke", via="api")
    assert open_members(db, "werbung") == set()
    with db.session() as session:
        token = consent.request_opt_in(session, settings, a, "marketing").token
    assert open_members(db, "werbung") == set()
    with db.session() as session:
        consent.confirm(session, settings, token)
    assert open_members(db, "werbung") == {a}
    with db.session() as session:
        link = consent.unsubscribe_token(session, settings, a, "marketing", "email")
    with db.session() as session:
        consent.unsubscribe(session, settings, link)
    assert open_members(db, "werbung") == set()


def test_rectification_is_live(db, settings):  # noqa: F811
    ids = people(db, settings)
    save(db, "berliner", 'city = "Berlin"')
    with db.session() as session:
        rectify(session, settings, ids["A"], {"city": "Berlin", "postcode": "10115"})
    assert open_members(db, "berliner") == {ids["A"]}


def test_erasure_leaves_no_membership_rows(db, settings):  # noqa: F811
    ids = people(db, settings)
    save(db, "berliner", 'city = "Berlin"')
    with db.session() as session:
        rectify(session, settings, ids["A"], {"city": "Berlin"})
    with db.session() as session:
        erase(session, ids["A"], settings)
    with db.session(write=False) as session:
        rows = session.scalar(
            select(func.count())
            .select_from(SegmentMembership)
            .where(SegmentMembership.customer_id == ids["A"])
        )
    assert rows == 0
