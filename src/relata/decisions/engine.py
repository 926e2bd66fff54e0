"""The engine of one process: the current snapshot, a bounded cache of customers, and what
this process has shown since its last sync. Thread-safe; one per database (``engine_for``).

The hot path never scans a table: a decision reads the snapshot (reloaded when the polled
versions move, see sync.py) and the customer's state (from the cache, or three indexed
reads on a miss). The cache is bounded (least recently used goes) and short-lived
(``RELATA_DECISION_PROFILE_TTL_SECONDS``): this process updates a cached customer at once
after its own decisions and responses; what other processes wrote about the customer
(new purchases, their decisions) is seen when the entry expires.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import weakref
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from relata import customer_changes, heap
from relata.config import Settings
from relata.db import Database
from relata.decisions import collaborative, eligibility, loader, sync
from relata.decisions.bandit import Prior
from relata.decisions.decide import Outcome, Request, decide
from relata.decisions.features import CustomerState, ResponseRow
from relata.decisions.policies import Exclusion, Usage
from relata.decisions.scoring import Weights
from relata.decisions.snapshot import Config, Model, Snapshot, build
from relata.segments.rules.timing import BERLIN
from relata.writer import Writer, shared

log = logging.getLogger("relata.decisions")
FULL_RELOAD_SECONDS = 600.0  # re-read all counts now and then: their decay moves on
THAW_EVERY = 6  # full reloads between settles of the whole heap, frozen part too
FOLD_BATCH = 50  # outcomes a fold job in the writer (SQLite): its batch waits for it, so short


def config_of(settings: Settings) -> Config:
    prior = Prior(settings.decision_prior_rate, 2.0, settings.decision_cell_strength)
    return Config(tuple(settings.decision_learning_chain), prior, settings.decision_control_share)


class Engine:
    def __init__(self, settings: Settings, seed: int | None = None) -> None:
        self.settings = settings
        self.config = config_of(settings)
        self._snap: Snapshot | None = None
        self._versions: loader.Versions = (-1, -1, None, None)
        self._category_of: dict[int, str | None] = {}
        self._checked = self._full_at = 0.0
        self.loads = 0  # full reloads of the snapshot so far
        self._usage_day = None
        self._segments: tuple[int, Any] | None = None
        self._sync_lock = threading.Lock()
        self._cache: OrderedDict[int, tuple[float, CustomerState]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._pending = _Pending()
        self._seeds = np.random.SeedSequence(seed)
        self._seed_lock = threading.Lock()
        self._local = threading.local()
        self._worker: _Background | None = None
        self._writer: Writer | None = None
        self._writer_lock = threading.Lock()
        self._changes: customer_changes.Listener | None = None

    # --- the shared snapshot ---------------------------------------------------------------

    def snapshot(self, session: Session) -> Snapshot:
        """The current snapshot. A server's background thread keeps it current (``start``);
        without one, the versions are polled here once the sync interval has passed."""
        snap = self._snap
        if snap is None or (
            self._worker is None
            and time.monotonic() - self._checked >= self.settings.decision_sync_seconds
        ):
            snap = self.sync(session)
        return snap

    def sync(self, session: Session, force: bool = False) -> Snapshot:
        with self._sync_lock:
            now_m = time.monotonic()
            versions = loader.versions(session)
            segments = eligibility.segments_version(session)
            snap, old = self._snap, self._versions
            today = datetime.now(BERLIN).date()
            full = (
                force
                or snap is None
                or versions[0] != old[0]
                or versions[2] != old[2]
                or versions[3] != old[3]
                or segments != self._segments
                or now_m - self._full_at >= FULL_RELOAD_SECONDS
            )
            if full:
                snap = self._load(session, versions, snap, segments != self._segments)
                self._full_at, self._segments = now_m, segments
                self.loads += 1
            elif versions[1] != old[1] or today != self._usage_day:
                assert snap is not None
                stats = loader.stats(
                    session,
                    snap.catalogue,
                    self.settings.decision_half_life_days,
                    versions[3],
                    since_version=old[1],
                    previous=snap.stats,
                )
                usage = loader.usage(session, snap.catalogue, today)
                # A fresh memo: the moments it holds came from the old counts.
                snap = dataclasses.replace(snap, stats=stats, usage=usage, memo={})
            if full or versions[1] != old[1] or today != self._usage_day:
                self._pending.clear()  # the usage just read includes what was folded
                self._usage_day = today
            assert snap is not None
            self._snap, self._versions, self._checked = snap, versions, now_m
            return snap

    def _load(
        self,
        session: Session,
        versions: loader.Versions,
        old: Snapshot | None,
        segments_changed: bool,
    ) -> Snapshot:
        now = datetime.now(BERLIN)
        catalogue = loader.catalogue(session, versions[0])
        stats = loader.stats(session, catalogue, self.settings.decision_half_life_days, versions[3])
        usage = loader.usage(session, catalogue, now.date())
        model = self._model(session, versions[2], old)
        compiled = old.compiled if old is not None and not segments_changed else None
        segments = eligibility.segment_rules(session) if _names_segments(catalogue) else {}
        snap = build(catalogue, stats, usage, model, now, compiled, segments)
        for rule in snap.compiled.values():
            if rule.problem:
                log.warning("offer rule %r cannot be evaluated: %s", rule.text, rule.problem)
        self._category_of = {o.id: o.category for o in catalogue.offers}
        if old is None or old.needs != snap.needs:
            self.invalidate()  # cached profiles may lack rows the new rules read
        return snap

    def _model(self, session: Session, model_id: int | None, old: Snapshot | None) -> Model:
        if old is not None and old.model.id == model_id:
            return old.model
        row = loader.model(session, model_id)
        if row is None:
            return Model()
        params = row.params or {}
        items = None
        if row.blob:
            items = collaborative.load(
                row.blob, params.get("shares", {}), params.get("customers", 0)
            )
        weights = Weights(**{k: float(v) for k, v in params.get("weights", {}).items()})
        return Model(row.id, weights, params.get("shares", {}), items)

    # --- customers ---------------------------------------------------------------------------

    def changes_mark(self) -> int:
        """Note this before reading a customer's status; hand it to ``customer``."""
        changes = self._changes
        return changes.generation if changes is not None else 0

    def knows_current(self, customer_id: int) -> bool:
        """Whether this customer is cached and would be announced if it changed: then its
        status need not be read (customer_changes.py)."""
        changes = self._changes
        if changes is None or not changes.live:
            return False
        ttl = self.settings.decision_profile_ttl_seconds
        with self._cache_lock:
            item = self._cache.get(customer_id)
        return item is not None and time.monotonic() - item[0] < ttl

    def customer(
        self, session: Session, customer_id: int, now: datetime, mark: int | None = None
    ) -> CustomerState | None:
        """The cached state, or one read now. ``mark`` (``changes_mark``, noted before the
        customer's status was read): a state read after an announcement since is not kept."""
        snap = self.snapshot(session)
        ttl = self.settings.decision_profile_ttl_seconds
        with self._cache_lock:
            item = self._cache.get(customer_id)
            if item is not None and time.monotonic() - item[0] < ttl:
                self._cache.move_to_end(customer_id)
                return item[1]
        if mark is None:
            mark = self.changes_mark()
        state = loader.customer(
            session,
            customer_id,
            snap.needs,
            self._category_of,
            now,
            snap.horizon_days,
            self.settings,
        )
        if state is not None:
            self._put(customer_id, state, mark=mark)
        return state

    def _put(
        self,
        customer_id: int,
        state: CustomerState,
        keep_age: bool = False,
        mark: int | None = None,
    ) -> None:
        size = self.settings.decision_cache_size
        if size <= 0:
            return
        with self._cache_lock:
            # Under the lock that the listener's invalidate takes: a change announced
            # after ``mark`` either stops this or evicts what it puts.
            if mark is not None and mark != self.changes_mark():
                return
            old = self._cache.get(customer_id)
            if keep_age and old is None:
                return  # forgotten meanwhile (an announced change): read afresh next time
            loaded = old[0] if keep_age and old is not None else time.monotonic()
            self._cache[customer_id] = (loaded, state)
            self._cache.move_to_end(customer_id)
            while len(self._cache) > size:
                self._cache.popitem(last=False)

    def invalidate(self, customer_ids: Iterable[int] | None = None) -> None:
        """Forget cached customers (all, without ids): their next decision reads them again."""
        with self._cache_lock:
            if customer_ids is None:
                self._cache.clear()
            else:
                for cid in customer_ids:
                    self._cache.pop(cid, None)

    def remember(self, customer_id: int, rows: list[ResponseRow]) -> None:
        """Add this process's own responses (and impressions) to a cached customer.

        Copy on write: other threads may be reading the cached state.
        """
        with self._cache_lock:
            item = self._cache.get(customer_id)
        if item is None or not rows:
            return
        state = _copy(item[1])
        for row in rows:
            state.record(row)
        self._put(customer_id, state, keep_age=True)

    def cached(self) -> int:
        return len(self._cache)

    # --- deciding ----------------------------------------------------------------------------

    def decide(
        self,
        snap: Snapshot,
        state: CustomerState,
        request: Request,
        now: datetime,
        block: Exclusion | None = None,
    ) -> Outcome:
        usage = self._pending.usage(snap.usage)
        return decide(snap, state, request, now, self.config, self.rng(), usage, block)

    def count(self, outcome: Outcome, channel: str) -> None:
        """What this process just showed counts towards the caps until the next fold."""
        if outcome.chosen:
            self._pending.add(outcome, channel)

    def rng(self) -> np.random.Generator:
        found = getattr(self._local, "rng", None)
        if found is None:
            with self._seed_lock:
                child = self._seeds.spawn(1)[0]
            found = self._local.rng = np.random.default_rng(child)
        return found

    # --- the background fold -----------------------------------------------------------------

    def preload(self, db: Database) -> None:
        """Load the snapshot now (a server before its first request); a failure is logged,
        and the first decision tries again."""
        try:
            with db.session(write=False) as session:
                self.sync(session, force=True)
        except Exception:
            log.exception("loading the decision snapshot failed")

    def start(self, db: Database, settle_heap: bool = False) -> None:
        """Fold responses into the counts and keep the snapshot current in the background,
        so that a decision never waits for either (a server's; the CLI does without).
        ``settle_heap``: settle the heap (heap.py) after each full reload of the snapshot."""
        settings = self.settings
        folds = settings.decision_fold_seconds > 0 and settings.decision_fold_in_server
        if self._worker is None and (folds or settings.decision_sync_seconds > 0):
            self._worker = _Background(self, db, settle_heap)
            self._worker.start()
        if self._changes is None and settings.decision_listen and not db.is_sqlite:
            self._changes = customer_changes.Listener(db.engine)
            self._changes.start()

    def stop(self) -> None:
        if self._changes is not None:
            self._changes.stop()
            self._changes = None
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
        if self._writer is not None:
            self._writer.stop()
            self._writer = None

    def writer(self, db: Database) -> Writer:
        """The group-commit writer of this process's decision log (see writer.py)."""
        if self._writer is None:
            with self._writer_lock:
                if self._writer is None:
                    self._writer = shared(db)
        return self._writer


def _names_segments(catalogue: Any) -> bool:
    texts = [o.rule for o in catalogue.offers] + [p.rule for p in catalogue.policies]
    return any(t and "segment" in t for t in texts)


def _copy(state: CustomerState) -> CustomerState:
    return dataclasses.replace(
        state,
        impressions={k: dict(v) for k, v in state.impressions.items()},
        answered=set(state.answered),
        won=set(state.won),
        rejected=dict(state.rejected),
        positives=Counter(state.positives),
        contacts={k: dict(v) for k, v in state.contacts.items()},
        memo=dict(state.memo),
        reached={k: dict(v) for k, v in state.reached.items()},
    )


class _Pending:
    """Shows of capped offers and contacts per channel since the last reload of the usage.

    Only offers with a cap or a budget are counted: the usage of no other offer is read,
    and a busy process merges these counts into every decision's usage."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.offers: Counter[int] = Counter()
        self.channels: Counter[str] = Counter()

    def add(self, outcome: Outcome, channel: str) -> None:
        with self._lock:
            for c in outcome.chosen:
                if c.offer.capped:
                    self.offers[c.offer.id] += 1
                self.channels[channel] += 1

    def clear(self) -> None:
        with self._lock:
            self.offers, self.channels = Counter(), Counter()

    def usage(self, base: Usage) -> Usage:
        with self._lock:
            if not self.offers and not self.channels:
                return base
            offers, channels = dict(self.offers), dict(self.channels)
        return Usage(
            _plus(base.offer_total, offers),
            _plus(base.offer_today, offers),
            base.offer_spent,
            _plus(base.channel_today, channels),
        )


def _plus(base: Mapping[Any, int], more: dict[Any, int]) -> dict[Any, int]:
    if not more:
        return dict(base)
    found = dict(base)
    for key, n in more.items():
        found[key] = found.get(key, 0) + n
    return found


class _Background(threading.Thread):
    """Every second or so: folds outcomes into the shared counts (see sync.py) through the
    process's group-commit writer, and polls the versions to reload the snapshot.

    On SQLite the fold goes through the writer so that it never waits for the database's
    write lock behind the decision log (a waiting writer sleeps in steps of milliseconds),
    in small batches so that the decisions committed with one are not held up long. On
    PostgreSQL it has its own transaction: the decision log does not wait behind it (a
    fold job in the writer's batch was the slowest of its commits, 10–35 ms under load)."""

    def __init__(self, engine: Engine, db: Database, settle_heap: bool) -> None:
        super().__init__(name="relata-decisions-background", daemon=True)
        self.engine, self.db, self.settle_heap = engine, db, settle_heap
        self._halt = threading.Event()

    def run(self) -> None:
        settings = self.engine.settings
        fold_every, sync_every = settings.decision_fold_seconds, settings.decision_sync_seconds
        if not settings.decision_fold_in_server:
            fold_every = 0  # a learner process folds (learner.py)
        tick = min(t for t in (fold_every, sync_every) if t > 0)
        folded = synced = time.monotonic()
        settled = 0
        while not self._halt.wait(tick):
            now = time.monotonic()
            if fold_every > 0 and now - folded >= fold_every:
                folded = now
                self._fold()
            if sync_every > 0 and now - synced >= sync_every:
                synced = now
                loads = self.engine.loads
                try:
                    with self.db.session(write=False) as session:
                        self.engine.sync(session)
                except Exception:  # the next round tries again; decisions use the last one
                    log.exception("reloading the decision snapshot failed")
                if self.settle_heap and self.engine.loads != loads:
                    # The old snapshot's cycles go, the new one is frozen: one pause of
                    # the order of 100 ms per full reload instead of one every few seconds;
                    # every sixth (hourly at the least) also over what was frozen before.
                    settled += 1
                    heap.settle(thaw=settled % THAW_EVERY == 0)

    def _fold(self) -> None:
        half_life = self.engine.settings.decision_half_life_days

        def job(session: Session) -> int:
            return sync.fold(session, half_life, FOLD_BATCH)

        writer = self.engine.writer(self.db) if self.db.is_sqlite else None
        try:
            while not self._halt.is_set():
                if writer is not None:
                    done = writer.run(job)
                else:
                    with self.db.session() as session:
                        done = job(session)
                if done < FOLD_BATCH:
                    break
        except Exception:  # the next round tries again; a request never depends on it
            log.exception("folding decision outcomes failed")

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)


# One engine per connection pool, like consent's cache: a process talking to two databases
# (tests do) keeps them apart, and a session finds its engine through its bind.
_engines: weakref.WeakKeyDictionary[Any, Engine] = weakref.WeakKeyDictionary()
_engines_lock = threading.Lock()


def engine_for(db: Database, settings: Settings) -> Engine:
    """The engine of this process for this database."""
    with _engines_lock:
        found = _engines.get(db.engine.pool)
        if found is None:
            found = _engines[db.engine.pool] = Engine(settings)
            # Merges, erasures, consent changes, new holdings: here and in other processes.
            customer_changes.subscribe(db.engine, found.invalidate)
        return found


def existing(session: Session) -> Engine | None:
    """The engine of the session's database in this process, if one was made."""
    with _engines_lock:
        return _engines.get(session.get_bind().engine.pool)
