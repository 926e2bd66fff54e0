"""The demo's next best offer: offers and activities of the demo shop, contact policies,
consents to personalisation and e-mail, and a few hundred decisions with responses.

Without them a newcomer's decision simulator would answer every customer with "no
personalisation consent" and an empty catalogue. The consents are synthetic (source
``demo``, two customers in three, chosen by the customer id), like everything else in
the demo; the responses follow a hidden taste per category so that offer performance and
the learning cells have something to show.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from relata.config import Settings
from relata.consent import service as consent
from relata.consent.models import ConsentEntry
from relata.db import Database, utcnow
from relata.decisions import offers, service, sync
from relata.decisions.engine import Engine
from relata.decisions.schemas import DecisionRequest, OfferWrite, PolicyWrite, ResponseItem
from relata.demo.catalogue import PRODUCTS
from relata.profiles.models import Customer

_SKU = {p.name: p.product_id for p in PRODUCTS}


def _product(name: str, category: str) -> dict[str, Any]:
    return {"name": name, "kind": "product", "category": category, "product_id": _SKU[name]}


OFFERS: tuple[dict[str, Any], ...] = (
    {
        **_product("Laufschuh Pegasus", "Schuhe"),
        "key": "laufschuh-pegasus",
        "name": "Laufschuh Pegasus: 15 % Rabatt",
        "kind": "coupon",
        "channels": ["web", "app", "email"],
        "value": 9.0,
        "cost": 9.0,
        "template": "coupon/laufschuh-15",
        "description": "Gutschein für Läuferinnen und Läufer",
    },
    {
        **_product("Funktionsjacke Herren", "Bekleidung"),
        "key": "funktionsjacke",
        "channels": ["web", "app", "email"],
        "value": 35.0,
        "rule": "age >= 18",
        "template": "product/funktionsjacke",
    },
    {
        **_product("Kaffeevollautomat Barista", "Haushalt & Küche"),
        "key": "kaffeevollautomat",
        "channels": ["web", "email"],
        "placements": ["home", "product"],
        "value": 90.0,
        "rule": "age >= 25",
        "template": "product/barista",
    },
    {
        **_product("Smartwatch Fit 3", "Elektronik"),
        "key": "smartwatch",
        "channels": ["web", "app"],
        "value": 40.0,
        "template": "product/smartwatch",
    },
    {
        **_product("Hochbeet Lärche", "Garten"),
        "key": "hochbeet",
        "channels": ["web", "email"],
        "value": 45.0,
        "cap_daily": 200,
        "template": "product/hochbeet",
    },
    {
        **_product("Brettspiel Die Siedler", "Spielwaren"),
        "key": "siedler",
        "channels": ["web", "app", "email"],
        "value": 10.0,
        "template": "product/siedler",
    },
    {
        "key": "premium",
        "name": "Premium-Mitgliedschaft: 3 Monate gratis",
        "kind": "product",
        "category": "Mitgliedschaft",
        "product_id": "PREMIUM",
        "channels": ["web", "app", "email", "hotline"],
        "value": 30.0,
        "weight": 1.5,
        "template": "offer/premium",
    },
    {
        "key": "versandflat",
        "name": "Versandflatrate",
        "kind": "product",
        "category": "Service",
        "product_id": "VERSANDFLAT",
        "channels": ["web", "app"],
        "placements": ["checkout"],
        "value": 12.0,
        "template": "offer/versandflat",
    },
    {
        "key": "ratgeber-laufen",
        "name": "Ratgeber: den richtigen Laufschuh finden",
        "kind": "content",
        "category": "Schuhe",
        "channels": ["web", "app", "email"],
        "value": 1.0,
        "template": "content/ratgeber-laufen",
    },
    {
        "key": "gartensaison",
        "name": "Gartensaison: 10 % auf alles im Garten",
        "kind": "banner",
        "category": "Garten",
        "channels": ["web", "app"],
        "placements": ["home"],
        "value": 6.0,
        "budget": 5000.0,
        "cost": 2.0,
        "template": "banner/gartensaison",
    },
    {
        "key": "rueckruf-service",
        "name": "Rückruf vom Kundenservice anbieten",
        "kind": "activity",
        "category": "Service",
        "channels": ["hotline", "phone", "web"],
        "value": 5.0,
        "template": "activity/rueckruf",
    },
    {
        "key": "umfrage",
        "name": "Zufriedenheitsumfrage (2 Minuten)",
        "kind": "activity",
        "category": "Umfrage",
        "channels": ["email", "web"],
        "value": 2.0,
        "max_impressions": 1,
        "template": "activity/umfrage",
    },
    {
        "key": "nichts",
        "name": "Nichts anbieten",
        "kind": "nothing",
        "channels": ["web", "app", "email", "hotline", "phone"],
        "value": 0.5,
    },
)

POLICIES = (
    PolicyWrite(
        name="email-woechentlich", kind="frequency", channels=["email"], max_count=1, window_days=7
    ),
    PolicyWrite(name="keine-minderjaehrigen", kind="suppress", rule="age < 16"),
)

# The hidden taste the simulated responses follow: click rate by offer category.
TASTE = {"Schuhe": 0.25, "Garten": 0.18, "Mitgliedschaft": 0.12, "Elektronik": 0.10}
CHANNELS = ("web", "web", "app", "email")
PLACEMENTS = ("home", "product", "checkout")


def load(db: Database, settings: Settings, decisions: int = 600, seed: int = 42) -> dict[str, int]:
    """Create the demo's catalogue, consents and history (again: a no-op but for new
    decisions); what was done."""
    made = 0
    with db.session() as session:
        known = {o.key for o in offers.list_offers(session, include_archived=True)}
        for spec in OFFERS:
            if spec["key"] not in known:
                offers.create_offer(session, OfferWrite(**spec), settings, "demo")
                made += 1
        policies = {p.name for p in offers.list_policies(session)}
        for policy in POLICIES:
            if policy.name not in policies:
                offers.create_policy(session, policy, settings, "demo")
    with db.session(write=False) as session:
        customers = list(
            session.scalars(
                select(Customer.id).where(Customer.status == "active").order_by(Customer.id)
            )
        )
    granted = _consents(db, settings, customers)
    answered = _history(db, settings, customers, decisions, seed)
    return {"offers": made, "consents": granted, "decisions": decisions, "responses": answered}


def _consents(db: Database, settings: Settings, customers: list[int]) -> int:
    """Two customers in three allow personalisation on the web and in the app (push);
    half of those also e-mail marketing (what a decision on each channel asks for:
    RELATA_DECISION_CHANNELS)."""
    chosen = [c for c in customers if c % 3 != 0]
    at = utcnow() - timedelta(days=60)
    with db.session() as session:
        done = session.scalar(
            select(func.count()).select_from(ConsentEntry).where(ConsentEntry.source == "demo")
        )
        if done:
            return 0
        for customer_id in chosen:
            grants = [("personalisation", "web"), ("personalisation", "push")]
            if customer_id % 2 == 0:
                grants.append(("marketing", "email"))
            for purpose, channel in grants:
                consent.record(
                    session,
                    settings,
                    customer_id,
                    purpose,
                    channel,
                    "grant",
                    via="import",
                    source="demo",
                    occurred_at=at,
                    live=False,
                )
    return len(chosen)


def _history(
    db: Database, settings: Settings, customers: list[int], decisions: int, seed: int
) -> int:
    """Decisions for random customers, clicked and accepted as the hidden taste has it."""
    rng = random.Random(seed)
    engine = Engine(settings, seed=seed)
    answers = []
    with db.session() as session:
        for _ in range(decisions):
            ask = DecisionRequest(
                customer_id=rng.choice(customers),
                channel=rng.choice(CHANNELS),
                placement=rng.choice(PLACEMENTS),
                context={"device": rng.choice(["mobile", "desktop"])},
                limit=2,
            )
            try:
                answers.append(service.decide(session, engine, settings, ask))
            except service.CustomerNotFound:
                continue
    items = []
    for answer in answers:
        for choice in answer.offers:
            if choice.kind == "nothing":  # nothing to click
                continue
            rate = TASTE.get(choice.category or "", 0.04)
            kinds = ["click", "accept"] if rng.random() < 0.4 else ["click"]
            if rng.random() < rate:
                items += [
                    ResponseItem(decision_id=answer.decision_id, offer=choice.offer_id, type=kind)
                    for kind in kinds
                ]
    with db.session() as session:
        service.record_responses(session, settings, items)
    with db.session() as session:
        sync.fold(session, settings.decision_half_life_days)
    return len(items)
