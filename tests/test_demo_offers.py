"""The demo's next best offer setup (demo/offers.py), on both databases."""

from __future__ import annotations

from sqlalchemy import func, select

from relata.config import Settings
from relata.consent.models import ConsentEntry
from relata.decisions import offers, service
from relata.decisions.engine import Engine
from relata.decisions.models import Decision
from relata.decisions.schemas import DecisionRequest
from relata.demo import offers as demo
from tests.test_decisions import person


def test_the_demo_gets_a_catalogue_consents_and_a_history_once(db) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(database_url=db.url, decision_control_share=0)
    people = [person(db, settings, f"K{i}", birth_date="1980-05-01") for i in range(1, 13)]
    done = demo.load(db, settings, decisions=40)
    assert done["offers"] == len(demo.OFFERS)
    assert done["consents"] == len([c for c in people if c % 3 != 0])
    with db.session(write=False) as s:
        assert {p.name for p in offers.list_policies(s)} == {p.name for p in demo.POLICIES}
        assert s.scalar(select(func.count()).select_from(ConsentEntry)) > done["consents"]
        logged = s.scalar(select(func.count()).select_from(Decision))
    assert logged == 40
    allowed = next(c for c in people if c % 3 != 0)
    with db.session() as s:
        answer = service.decide(
            s, Engine(settings), settings, DecisionRequest(customer_id=allowed, channel="web")
        )
    assert answer.offers and answer.blocked is None
    refused = next(c for c in people if c % 3 == 0)
    with db.session() as s:
        answer = service.decide(
            s, Engine(settings), settings, DecisionRequest(customer_id=refused, channel="web")
        )
    assert answer.blocked == "no personalisation consent on web"
    again = demo.load(db, settings, decisions=5)
    assert (again["offers"], again["consents"]) == (0, 0)  # no second catalogue or consents
