"""`relata dedupe` and `relata dedupe train`: batch matching over every customer.

Reads in one read transaction, compares in Splink (no database involved), then writes in
short write transactions: merges a few thousand customers at a time (each through the
merge log), the review queue, and the blocking keys of real-time matching. A customer a
concurrent import merged away meanwhile is left out of this run's merges.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sqlalchemy import select

from relata.config import Settings
from relata.db import Database
from relata.identity import review as review_queue
from relata.identity import service as identity
from relata.identity.matching import engine, store
from relata.identity.matching.clustering import Pair, cluster
from relata.identity.matching.rows import Rows
from relata.identity.matching.scoring import (
    Params,
    Step,
    explain,
    probability,
    score,
    steps_json,
)
from relata.profiles.models import Customer

MERGE_BATCH = 2_000  # customers merged a transaction: bounds how long the write lock is held


class Progress:
    """Reports steps of a long run; the CLI shows them with Rich, tests ignore them."""

    def step(self, name: str, total: int | None = None) -> Callable[[int], None]:
        return lambda n: None

    def note(self, text: str) -> None:
        pass


@contextmanager
def no_gc() -> Iterator[None]:
    """Without the cyclic garbage collector while building millions of small objects.

    Each full collection walks every live object; building the rows of 100,000 customers
    triggered enough of them to take most of the time (7 s of 9). The rows hold no cycles.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass
class Timer:
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - started, 3)


@dataclass
class TrainSummary:
    version: int
    rows: int
    untrained_levels: list[str]
    seconds: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def train(db: Database, settings: Settings, progress: Progress | None = None) -> TrainSummary:
    progress = progress or Progress()
    timer = Timer()
    with no_gc(), timer("read"), db.session(write=False) as session:
        rows = _read(session, progress)
    with no_gc(), timer("train"):
        trained = engine.train(
            engine.arrow_table(rows.table_columns()),
            settings.match_backend,
            settings.match_u_max_pairs,
            step=lambda name: progress.step(name),
        )
    with timer("store"), db.session() as session:
        model = store.save_model(session, trained, settings.match_backend)
        version = model.version
    return TrainSummary(version, len(rows), trained.stats["untrained_levels"], timer.seconds)


def _read(session: Any, progress: Progress) -> Rows:
    advance = progress.step("reading customers", store.count_active(session))
    rows = store.load_rows(session, advance)
    rows.drop_crowded_keys()
    return rows


@dataclass
class DedupeSummary:
    model_version: int
    rows: int
    compared: int  # record pairs the blocking rules produced and the model scored
    candidates: int  # customer pairs at or above the review threshold
    merged: int  # customers merged into another
    clusters: int
    held_back: int  # auto-merge links the chaining guard refused (they go to review)
    queued: int  # open pairs in the review queue after the run
    keys: int  # blocking keys written for real-time matching
    seconds: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Verdict:
    weight: float  # the best of any pair of the two customers' rows
    conflict: bool  # any pair of their rows is in conflict
    rows: tuple[int, int]  # the best pair


def verdict(rows: Rows, params: Params, a: int, b: int) -> Verdict:
    best, conflict, which = float("-inf"), False, (-1, -1)
    for i in rows.of_customer.get(a, ()):
        fa = rows.features(i)
        for j in rows.of_customer.get(b, ()):
            s = score(fa, rows.features(j), params)
            conflict = conflict or s.conflict
            if s.weight > best:
                best, which = s.weight, (i, j)
    return Verdict(best, conflict, which)


def dedupe(db: Database, settings: Settings, progress: Progress | None = None) -> DedupeSummary:
    with no_gc():  # the rows stay alive throughout; every collection would walk them
        return _dedupe(db, settings, progress or Progress())


def _dedupe(db: Database, settings: Settings, progress: Progress) -> DedupeSummary:
    timer = Timer()
    auto, floor = settings.match_auto_merge_weight, settings.match_review_weight
    with no_gc(), timer("read"), db.session(write=False) as session:
        model, params = store.require_model(session)
        version, splink_model = model.version, model.splink
        rows = _read(session, progress)
        rejected = store.rejected_pairs(session)
    # The blocking keys of real-time matching are written while DuckDB compares: its
    # threads release the GIL, so on a small machine the two overlap. They name customers
    # as they were before this run's merges; real-time matching resolves every candidate
    # to its survivor, so a key of a merged customer still finds the right one.
    indexing = _KeyWriter(db, rows)
    with no_gc(), timer("compare"):
        indexing.start()
        table = engine.arrow_table(rows.table_columns())
        # Splink adjusts for term frequencies of the data it compares now; so does Python
        # here (clustering guard, explanations) and, from the next write on, in real time.
        tf = engine.term_frequencies(table)
        params = replace(params, tf=tf).with_conflicts(settings.match_conflicts)
        predicted = engine.predict(
            table, splink_model, params, floor, settings.match_backend, lambda n: progress.step(n)
        )
        del table
    with timer("index"):
        progress.step("indexing blocking keys for real-time matching")
        keys = indexing.join()
        with db.session() as session:
            store.update_term_frequencies(session, version, tf)
    with no_gc(), timer("cluster"):
        progress.step("clustering")
        rows_of_pair = {(a, b): (ra, rb) for a, b, _, ra, rb, _ in predicted.pairs}

        def weight_of(a: int, b: int) -> tuple[float, bool]:
            v = verdict(rows, params, a, b)
            return v.weight, v.conflict

        # Splink's conflict flag sees only row pairs at or above the floor; a pair of
        # golden records with two birth dates scores below it and would go unseen. So the
        # verdict on every candidate pair looks at all pairs of the two customers' rows.
        candidates = [
            Pair(a, b, w, c or verdict(rows, params, a, b).conflict)
            for a, b, w, _, _, c in predicted.pairs
        ]
        clustering = cluster(
            candidates,
            auto,
            floor,
            weight_of=weight_of,
            rejected=lambda a, b: (a, b) in rejected,
        )
    with timer("merge"):
        merged_into = _merge(db, settings, clustering.merges, version, progress)
    with timer("queue"):
        progress.step("filling the review queue")
        proposals = []
        for p in clustering.review:
            a, b = merged_into.get(p.a, p.a), merged_into.get(p.b, p.b)
            if a == b or (min(a, b), max(a, b)) in rejected:
                continue
            ra, rb = rows_of_pair.get((p.a, p.b)) or verdict(rows, params, p.a, p.b).rows
            steps = explain(rows.features(ra), rows.features(rb), params)
            proposals.append(
                review_queue.Proposal(a, b, p.weight, probability(p.weight), steps_json(steps))
            )
        with db.session() as session:
            review_queue.mark_stale(session)
            review_queue.propose(session, proposals, version)
            queued = len(review_queue.list_reviews(session, "open", limit=10**9))
    seconds = {
        **timer.seconds,
        **{f"compare.{k}": round(v, 3) for k, v in predicted.seconds.items()},
    }
    return DedupeSummary(
        model_version=version,
        rows=len(rows),
        compared=predicted.compared,
        candidates=len(predicted.pairs),
        merged=sum(1 for m in clustering.merges if merged_into.get(m.b) is not None),
        clusters=len(clustering.clusters),
        held_back=clustering.held_back,
        queued=queued,
        keys=keys,
        seconds=seconds,
    )


class _KeyWriter(threading.Thread):
    """Replaces every blocking key by those of ``rows``, in one write transaction."""

    def __init__(self, db: Database, rows: Rows) -> None:
        super().__init__(name="relata-dedupe-keys", daemon=True)
        self.db, self.rows = db, rows
        self.count = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.db.session() as session:
                self.count = store.rebuild_keys(session, self.rows)
        except BaseException as exc:  # re-raised in the caller's thread by join()
            self.error = exc

    def join(self, timeout: float | None = None) -> int:  # type: ignore[override]
        if self.is_alive() or self.ident is not None:
            super().join(timeout)
        if self.error is not None:
            raise self.error
        return self.count


def _merge(
    db: Database, settings: Settings, merges: list[Pair], version: int, progress: Progress
) -> dict[int, int]:
    """Merge in batches of whole clusters; returns merged customer → survivor."""
    by_survivor: dict[int, list[Pair]] = {}
    for m in merges:
        by_survivor.setdefault(m.a, []).append(m)
    clusters = list(by_survivor.items())
    advance = progress.step("merging", len(merges))
    merged_into: dict[int, int] = {}
    batch: list[tuple[int, list[Pair]]] = []
    size = 0
    for item in clusters:
        batch.append(item)
        size += len(item[1])
        if size >= MERGE_BATCH:
            merged_into.update(_merge_batch(db, settings, batch, version))
            advance(size)
            batch, size = [], 0
    if batch:
        merged_into.update(_merge_batch(db, settings, batch, version))
        advance(size)
    return merged_into


def _merge_batch(
    db: Database, settings: Settings, batch: list[tuple[int, list[Pair]]], version: int
) -> dict[int, int]:
    ids = sorted({x for survivor, pairs in batch for x in (survivor, *(p.b for p in pairs))})
    with db.session() as session:
        active = set()
        for i in range(0, len(ids), store.CHUNK):
            chunk = ids[i : i + store.CHUNK]
            active.update(
                session.scalars(
                    select(Customer.id).where(Customer.id.in_(chunk), Customer.status == "active")
                )
            )
        todo = [
            (survivor, p.b, f"matching: weight {p.weight:.1f} (model v{version})")
            for survivor, pairs in batch
            if survivor in active and all(p.b in active for p in pairs)
            for p in pairs
        ]
        identity.merge_many(session, todo, settings)
    return {merged: survivor for survivor, merged, _ in todo}


def explain_pair(db: Database, a: int, b: int) -> tuple[float, list[Step]]:
    """The waterfall of two customers: their best-scoring pair of records."""
    with db.session(write=False) as session:
        _, params = store.require_model(session)
        ra, rb = identity.resolve_id(session, a), identity.resolve_id(session, b)
        found = store.customer_features(session, [ra, rb])
    for cid, asked in ((ra, a), (rb, b)):
        if cid not in found:
            raise store.UnknownCustomer(f"no customer with id {asked}")
    if ra == rb:
        raise store.UnknownCustomer(f"customers {a} and {b} are one customer ({ra}) already")
    best: tuple[float, list[Step]] | None = None
    for fa in found[ra]:
        for fb in found[rb]:
            weight = score(fa, fb, params).weight
            if best is None or weight > best[0]:
                best = (weight, explain(fa, fb, params))
    assert best is not None
    return best
