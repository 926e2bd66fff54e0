"""Real-time matching: a new customer compared at once with the candidates its blocking
keys find, scored in Python with the trained model's parameters.

`match_new` is for customers an import or an event just created because no identifier
linked them to anyone. Candidates come from `match_keys` by index seeks (never a scan),
are resolved to the customers they belong to now and scored against the new golden
record; the best at or above the auto-merge threshold absorbs the new customer (through
the merge log), the review band goes to the review queue, the rest is dropped. A pair a
person rejected, or one in conflict (first names or birth dates that say two people), is
never merged.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from threading import Lock

from sqlalchemy.orm import Session

from relata.config import Settings
from relata.identity import review as review_queue
from relata.identity import service as identity
from relata.identity.matching import store
from relata.identity.matching.models import MatchModel
from relata.identity.matching.scoring import Params, explain, probability, score, steps_json

CANDIDATES = 300  # at most this many candidates a new customer: bounds the work


@dataclass
class RealtimeResult:
    compared: int = 0  # candidate pairs scored
    merged: list[tuple[int, int, float]] = field(default_factory=list)  # survivor, merged, w
    queued: list[tuple[int, int, float]] = field(default_factory=list)
    model_version: int | None = None  # None: no model trained yet, nothing was matched


CACHE_SECONDS = 60.0  # a batch run refreshes the model's term frequencies
_cache: dict[tuple[str, int], tuple[float, int, Params]] = {}
_lock = Lock()


def _params(session: Session) -> tuple[int, Params] | None:
    """The current model's parameters, read once per model and process."""
    model_id = store.current_model_id(session)
    if model_id is None:
        return None
    key = (str(session.get_bind().engine.url), model_id)
    now = time.monotonic()
    with _lock:
        found = _cache.get(key)
    if found is None or now - found[0] > CACHE_SECONDS:
        model = session.get(MatchModel, model_id)
        assert model is not None
        params = Params.from_json(model.params)
        params.check()
        found = (now, model.version, params)
        with _lock:
            _cache.clear()  # one model at a time is current
            _cache[key] = found
    return found[1], found[2]


def match_new(session: Session, customer_ids: Iterable[int], settings: Settings) -> RealtimeResult:
    """Match each new customer; merges and review entries are written in ``session``."""
    result = RealtimeResult()
    current = _params(session)
    if current is None:
        return result
    version, params = current
    params = params.with_conflicts(settings.match_conflicts)
    result.model_version = version
    for cid in sorted(set(customer_ids)):
        _match_one(session, cid, version, params, settings, result)
    return result


def _match_one(
    session: Session,
    cid: int,
    version: int,
    params: Params,
    settings: Settings,
    result: RealtimeResult,
) -> None:
    new = store.golden_features(session, [cid]).get(cid)
    if new is None:  # merged away already (its identifiers linked it) or unknown
        return
    found = store.candidates(session, new, CANDIDATES)
    found.discard(cid)
    roots = {r for r in identity.resolve_ids(session, found).values() if r != cid}
    others = store.golden_features(session, roots)
    rejected = store.rejected_pairs(session, [cid, *others]) if others else set()
    scored = []
    for other, features in others.items():
        s = score(new, features, params)
        result.compared += 1
        if s.conflict or (min(cid, other), max(cid, other)) in rejected:
            continue
        if s.weight >= settings.match_review_weight:
            scored.append((s.weight, other, features))
    scored.sort(key=lambda item: (-item[0], item[1]))
    keeper = cid
    if scored and scored[0][0] >= settings.match_auto_merge_weight:
        weight, other, _ = scored.pop(0)
        keeper, gone = min(cid, other), max(cid, other)
        reason = f"matching (real time): weight {weight:.1f} (model v{version})"
        identity.merge_customers(session, keeper, gone, reason, settings)
        result.merged.append((keeper, gone, weight))
    proposals = []
    for weight, other, features in scored:
        if other == keeper:
            continue
        steps = explain(new, features, params)
        proposals.append(
            review_queue.Proposal(keeper, other, weight, probability(weight), steps_json(steps))
        )
        result.queued.append((min(keeper, other), max(keeper, other), weight))
    if proposals:
        review_queue.propose(session, proposals, version)
    store.add_keys(session, keeper, new)
