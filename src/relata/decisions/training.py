"""The batch model (``relata decisions train``): similar customers, and the score weights.

1. Outcomes not yet folded are folded, so the model sees every response so far.
2. The collaborative item model is trained on every active customer's items: what they
   bought (products and categories, from holdings) and what they accepted (offers),
   streamed from the database in customer order (collaborative.py).
3. The weights of the score (scoring.py) are fitted by logistic regression (scikit-learn)
   on logged shows: the features each shown offer had when it was decided, and whether it
   was won. Too few shows or wins: the previous weights stay.
4. The model is stored and ``decision_state.model_id`` moved: every engine loads it within
   its sync interval.

Run it from cron or a systemd timer, or keep it running with ``--every HOURS``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from relata.config import Settings
from relata.db import utcnow
from relata.decisions import collaborative, sync
from relata.decisions.features import POSITIVE
from relata.decisions.models import Decision, DecisionModel, DecisionOutcome, DecisionResponse
from relata.decisions.scoring import FEATURES, Weights
from relata.profiles.models import Customer, Holding

MAX_SHOWS = 200_000
MIN_SHOWS, MIN_WINS = 200, 10
CHUNK = 500


def train(session: Session, settings: Settings, days: int = 90) -> dict[str, Any]:
    folded = 0
    while n := sync.fold(session, settings.decision_half_life_days):
        folded += n
    items = collaborative.train(_baskets(session))
    previous = _latest(session)
    weights, fit = _weights(session, utcnow() - timedelta(days=days))
    if weights is None:
        weights = _previous_weights(previous)
    model = DecisionModel(
        params={
            "weights": asdict(weights),
            "shares": items.shares,
            "customers": items.customers,
        },
        blob=collaborative.dump(items),
        metrics={
            "customers": items.customers,
            "items": len(items.items),
            "similar_pairs": int(items.similarity.nnz),
            "outcomes_folded": folded,
            **fit,
        },
        created_at=utcnow(),
    )
    session.add(model)
    session.flush()
    sync.bump(session, model_id=model.id)
    return {"model_id": model.id, "weights": asdict(weights), **model.metrics}


def _latest(session: Session) -> DecisionModel | None:
    return session.scalar(select(DecisionModel).order_by(DecisionModel.id.desc()).limit(1))


def _previous_weights(model: DecisionModel | None) -> Weights:
    if model is None:
        return Weights()
    return Weights(**model.params.get("weights", {}))


def _baskets(session: Session) -> Iterator[list[str]]:
    """Each active customer's items, one customer after another, streamed."""
    positives: dict[int, list[str]] = {}
    rows = session.execute(
        select(DecisionResponse.customer_id, DecisionResponse.offer_id).where(
            DecisionResponse.kind.in_(sorted(POSITIVE))
        )
    )
    for cid, offer_id in rows:
        positives.setdefault(cid, []).append(f"o:{offer_id}")
    stmt = (
        select(Holding.customer_id, Holding.product_id, Holding.category)
        .join(Customer, Customer.id == Holding.customer_id)
        .where(Customer.status == "active")
        .order_by(Holding.customer_id)
        .execution_options(yield_per=50_000)
    )
    current, basket = None, []
    for cid, product, category in session.execute(stmt):
        if cid != current:
            if current is not None:
                yield basket + positives.pop(current, [])
            current, basket = cid, []
        if product:
            basket.append(f"p:{product}")
        if category:
            basket.append(f"c:{category}")
    if current is not None:
        yield basket + positives.pop(current, [])
    yield from positives.values()


def _weights(session: Session, since: datetime) -> tuple[Weights | None, dict[str, Any]]:
    """Logistic regression of won ~ the logged features of each show since ``since``."""
    x, y = _shows(session, since)
    found: dict[str, Any] = {"shows": len(y), "wins": int(sum(y))}
    if len(y) < MIN_SHOWS or found["wins"] < MIN_WINS or len(y) - found["wins"] < MIN_WINS:
        found["weights_fitted"] = False
        return None, found
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss, roc_auc_score

    fit = LogisticRegression(C=1.0, max_iter=1000).fit(x, y)
    coef = np.clip(fit.coef_[0], -5, 5)
    p = fit.predict_proba(x)[:, 1]
    found.update(
        weights_fitted=True,
        log_loss=round(float(log_loss(y, p)), 5),
        auc=round(float(roc_auc_score(y, p)), 4),
    )
    names = ("base", *FEATURES)
    values = dict(zip(names, (float(c) for c in coef), strict=True))
    return Weights(intercept=float(fit.intercept_[0]), **values), found


def _shows(session: Session, since: datetime) -> tuple[np.ndarray, np.ndarray]:
    """(features, won) of the newest shows; decision ids are time-ordered (UUIDv7)."""
    rows = session.execute(
        select(Decision.id, Decision.offers)
        .where(Decision.created_at >= since)
        .order_by(Decision.id.desc())
        .limit(MAX_SHOWS)
    ).all()
    ids = [r[0] for r in rows]
    shown, won = _outcomes(session, ids, "show"), _outcomes(session, ids, "win")
    x, y = [], []
    for decision_id, offers in rows:
        for o in offers:
            f = o.get("features") or {}
            if "cell" not in f or (decision_id, o["offer_id"]) not in shown:
                continue
            x.append([f["cell"], *(f.get(k, 0.0) for k in FEATURES)])
            y.append((decision_id, o["offer_id"]) in won)
    return np.asarray(x, dtype=float).reshape(-1, 1 + len(FEATURES)), np.asarray(y, dtype=int)


def _outcomes(session: Session, ids: list[uuid.UUID], kind: str) -> set[tuple[uuid.UUID, int]]:
    found: set[tuple[uuid.UUID, int]] = set()
    o = DecisionOutcome
    for i in range(0, len(ids), CHUNK):
        rows = session.execute(
            select(o.decision_id, o.offer_id).where(
                o.decision_id.in_(ids[i : i + CHUNK]), o.kind == kind
            )
        )
        found.update((d, offer) for d, offer in rows)
    return found
