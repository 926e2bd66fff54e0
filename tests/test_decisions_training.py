"""The batch model: similar customers' purchases reach the score; weights are fitted."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from relata.config import Settings
from relata.consent import service as consent
from relata.decisions import collaborative, offers, service, sync
from relata.decisions.engine import Engine
from relata.decisions.models import DecisionModel
from relata.decisions.schemas import DecisionRequest, OfferWrite, ResponseItem
from relata.decisions.training import train
from relata.events.api import parse
from relata.events.service import ingest
from tests.helpers import make_source


@pytest.fixture
def settings(db) -> Settings:
    return Settings(database_url=db.url, decision_sync_seconds=0, decision_control_share=0)


def orders(db, settings, baskets: dict[str, list[str]]) -> dict[str, int]:
    """Each user's orders (one product each) through the event API's service."""
    make_source(db, "shop")
    messages = [
        {
            "type": "track",
            "userId": user,
            "event": "Order Completed",
            "source": "shop",
            "messageId": f"{user}-{i}",
            "properties": {
                "order_id": f"{user}-{i}",
                "products": [{"product_id": p, "category": p.split("-")[0], "price": 10}],
            },
        }
        for user, products in baskets.items()
        for i, p in enumerate(products)
    ]
    with db.session() as s:
        done = ingest(s, parse({"batch": messages}).batch, settings)
    return dict(zip([m["userId"] for m in messages], done.customers, strict=True))


def test_item_similarity_from_baskets():
    model = collaborative.train(
        [["p:tent", "p:stove"], ["p:tent", "p:stove"], ["p:tent", "p:lamp"], ["p:tv"], ["p:tv"]]
    )
    rows = model.offer_rows([["p:stove"], ["p:tv"], ["p:unknown"]])
    scores = collaborative.scores(rows, model.columns(["p:tent"]))
    assert scores[0] > 0 and scores[1] == 0 and scores[2] == 0
    assert scores.shape == (3,)
    again = collaborative.load(collaborative.dump(model), model.shares, model.customers)
    assert again.items == model.items
    assert np.allclose(again.similarity.toarray(), model.similarity.toarray())


def test_training_brings_similar_customers_into_the_score(db, settings):
    campers = {f"c{i}": ["outdoor-tent", "outdoor-stove"] for i in range(6)}
    watchers = {f"w{i}": ["tv-screen", "tv-soundbar"] for i in range(6)}
    ids = orders(db, settings, {**campers, **watchers, "new": ["outdoor-tent"]})
    newcomer = ids["new"]
    with db.session() as s:
        consent.record(s, settings, newcomer, "personalisation", "web", "grant", via="api")
        for key, product in (("stove", "outdoor-stove"), ("soundbar", "tv-soundbar")):
            write = OfferWrite(
                key=key,
                name=key,
                channels=["web"],
                value=10,
                product_id=product,
                category=product.split("-")[0],
                suppress_held="none",
            )
            offers.create_offer(s, write, settings)
    with db.session() as s:
        result = train(s, settings)
    assert result["customers"] == 13 and result["items"] >= 4 and not result["weights_fitted"]
    engine = Engine(settings, seed=1)
    with db.session() as s:
        found = service.decide(
            s,
            engine,
            settings,
            DecisionRequest(customer_id=newcomer, channel="web", limit=2, explain=True),
            record=False,
        )
    parts = {c.key: c.parts for c in found.considered}
    assert parts["stove"]["similar"] > 0 == parts["soundbar"]["similar"]
    # Own history: the newcomer bought outdoor, so that category's offer gets a lift.
    assert parts["stove"]["own"] > parts["soundbar"]["own"]
    assert found.offers[0].key == "stove"


def test_weights_are_fitted_from_logged_shows(db, settings):
    ids = orders(db, settings, {f"u{i}": ["shoes-a"] for i in range(4)})
    with db.session() as s:
        for cid in ids.values():
            consent.record(s, settings, cid, "personalisation", "web", "grant", via="api")
        for key in ("good", "bad"):
            write = OfferWrite(key=key, name=key, channels=["web"], value=1, max_impressions=None)
            offers.create_offer(s, write, settings)
    engine = Engine(settings, seed=2)
    rng = np.random.default_rng(0)
    for n in range(240):
        with db.session() as s:
            made = service.decide(
                s,
                engine,
                settings,
                DecisionRequest(customer_id=list(ids.values())[n % 4], channel="web", limit=2),
            )
            for o in made.offers:
                if rng.random() < (0.5 if o.key == "good" else 0.05):
                    item = ResponseItem(decision_id=made.decision_id, offer=o.key, type="accept")
                    service.record_responses(s, settings, [item])
        if n % 40 == 39:  # the background fold of a server, now and then
            with db.session() as s:
                sync.fold(s, 30)
    with db.session() as s:
        result = train(s, settings)
    assert result["weights_fitted"] and result["shows"] == 480
    assert result["weights"]["base"] > 0 and 0.5 < result["auc"] <= 1
    with db.session(write=False) as s:
        stored = s.scalar(select(DecisionModel).order_by(DecisionModel.id.desc()))
    assert stored.params["weights"] == result["weights"]
    with db.session(write=False) as s:
        assert engine.sync(s).model.weights.base == pytest.approx(result["weights"]["base"])


@given(
    baskets=st.lists(
        st.lists(st.sampled_from([f"p:{i}" for i in range(12)]), min_size=1, max_size=4),
        min_size=2,
        max_size=30,
    ),
    offers=st.lists(st.lists(st.sampled_from([f"p:{i}" for i in range(14)]), max_size=3)),
    owned=st.lists(st.sampled_from([f"p:{i}" for i in range(14)]), max_size=6),
)
def test_collaborative_scores_are_the_summed_similarities(baskets, offers, owned):
    model = collaborative.train(baskets, k=5, min_customers=1)
    rows = model.offer_rows(offers)
    columns = model.columns(owned)
    found = collaborative.scores(rows, columns)
    # The same by dense arithmetic: offer × item similarities, summed over owned items.
    dense = rows.toarray().T  # offers × items
    expected = np.log1p(np.maximum(dense[:, columns].sum(axis=1), 0.0))
    assert found.shape == (len(offers),)
    assert np.allclose(found, expected, atol=1e-6)
