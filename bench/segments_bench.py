"""Segments at size (issue 5): a count over 1,000,000 customers and 10,000,000 events, and
live re-evaluation of 50 segments for one customer.

The data is built once into a database that stays (a SQLite file, or the PostgreSQL schema
``segments_bench``): ``--build``, then measure as often as wanted. Built straight through
the driver (``relata.db.bulk_insert``: COPY on PostgreSQL), secondary indexes dropped
while loading and created afterwards, then ANALYZE (and VACUUM on PostgreSQL, so the
visibility map lets index-only scans skip the heap, as autovacuum would).

* ``--count``: ``segments.service.count`` (the SQL compiler, one query) of
  ``gender = "f" and age > 30 and count(events "Order Completed" in last 90 days) >= 2``
  and of a few more rules, ``--repeat`` times each; median and best.
* ``--live``: 50 segments of mixed rules (golden record, events with windows and
  properties, purchases, traits, consent, a segment of segments) are saved; then for
  ``--samples`` random customers: the 50 compiled closures over the loaded profile alone,
  loading it (``loader.load_packed``: the profile, its open stays and its consent ledger
  in one statement), and the whole ``segments.service.reevaluate(session, [customer])``
  (the compiled segments, their versions read again at most every second; load; decide;
  write the changes) in a transaction begun already, as event intake's is.

.venv/bin/python -m bench.segments_bench --db sqlite:///bench-segments.db --build
.venv/bin/python -m bench.segments_bench --db sqlite:///bench-segments.db --count --live
.venv/bin/python -m bench.segments_bench --postgres --build --count --live
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import Index, create_engine, delete, text  # noqa: E402

from bench.view_bench import PG, pct  # noqa: E402
from relata.db import Base, Database, bulk_insert  # noqa: E402
from relata.events.models import Event  # noqa: E402
from relata.profiles.models import Customer, Holding  # noqa: E402
from relata.segments import compile_py, loader, service  # noqa: E402
from relata.segments.fields import REGISTRY  # noqa: E402
from relata.segments.membership import _live, _open_stays_json  # noqa: E402
from relata.segments.models import Segment, SegmentMembership, SegmentVersion  # noqa: E402
from relata.segments.rules import parse  # noqa: E402

SCHEMA = "segments_bench"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CHUNK = 200_000
CITIES = ["München", "Berlin", "Hamburg", "Köln", "Frankfurt", "Stuttgart", "Nürnberg", "Bonn"]
EVENTS = [  # name, share, properties
    ("Page Viewed", 0.45),
    ("Product Viewed", 0.25),
    ("Email Opened", 0.12),
    ("Email Clicked", 0.05),
    ("Cart Updated", 0.05),
    ("Order Completed", 0.05),
    ("Newsletter Subscribed", 0.01),
    ("Coupon Redeemed", 0.02),
]
CATEGORIES = ["Laufschuhe", "Jacken", "Hosen", "Socken", "Uhren", "Taschen", "Kreditkarte"]
COUNT_RULES = {
    "three conditions, one over events (the goal)":
        'gender = "f" and age > 30 and count(events "Order Completed" in last 90 days) >= 2',
    "has event since a date": 'has event "Email Opened" since 2026-06-01 and city = "Köln"',
    "sum of a property this year":
        'sum(properties.revenue of events "Order Completed" this year) > 500',
    "no event in 90 days (NOT)": 'not has event "Email Opened" in last 90 days and age < 40',
    "purchases and birthday":
        'has purchase where category = "Laufschuhe" in last 90 days or birthday in next 7 days',
}  # fmt: skip


def log(*args: object) -> None:
    print(*args, flush=True)


def ms(values: list[float]) -> str:
    return f"p50 {pct(values, 50):.3f} ms, p99 {pct(values, 99):.3f} ms, max {max(values):.3f} ms"


def pg_url(base: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{SCHEMA}"


# --- building ----------------------------------------------------------------------------------


def build(url: str, customers: int, events: int, holdings: int, seed: int) -> None:
    rng = random.Random(seed)
    if url.startswith("postgresql"):
        admin = create_engine(url.split("?")[0])
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
        admin.dispose()
    elif Path(url.removeprefix("sqlite:///")).exists():
        sys.exit(f"{url} exists; remove it to build afresh")
    db = Database(url)
    db.migrate()
    indexes = _secondary_indexes()
    with db.engine.begin() as conn:
        for index in indexes:
            index.drop(conn)
    started = time.perf_counter()
    with db.session() as s:
        s.execute(text("INSERT INTO sources (id, name, channel, trust, created_at) "
                       "VALUES (1, 'shop', 'shop', 80, :now)"), {"now": NOW})  # fmt: skip
    _customers(db, customers, rng)
    log(f"customers: {customers:,} in {time.perf_counter() - started:.0f} s")
    _events(db, customers, events, rng)
    log(f"events: {events:,} in {time.perf_counter() - started:.0f} s")
    _holdings(db, customers, holdings, rng)
    log(f"holdings: {holdings:,} in {time.perf_counter() - started:.0f} s")
    with db.engine.begin() as conn:
        for index in indexes:
            index.create(conn)
    log(f"indexes in {time.perf_counter() - started:.0f} s")
    _sequences(db)
    _analyze(db)
    log(f"built in {time.perf_counter() - started:.0f} s")
    db.dispose()


def _secondary_indexes() -> list[Index]:
    tables = {"customers", "events", "holdings"}
    return [i for t in Base.metadata.sorted_tables if t.name in tables for i in t.indexes]


def _sequences(db: Database) -> None:
    """Rows went in with their ids: move PostgreSQL's sequences past them."""
    if db.is_sqlite:
        return
    with db.engine.begin() as conn:
        for table in ("sources", "customers", "events", "holdings"):
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"
                )
            )


def _analyze(db: Database) -> None:
    if db.is_sqlite:
        with db.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        return
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


def _customers(db: Database, n: int, rng: random.Random) -> None:
    columns = ["id", "status", "gender", "birth_date", "postcode", "city", "first_name",
               "provenance", "created_at", "updated_at"]  # fmt: skip
    born = date(1940, 1, 1)
    for start in range(1, n + 1, CHUNK):
        rows = [
            (
                cid,
                "active",
                rng.choice("mmmmffffd"),
                born + timedelta(days=rng.randrange(24_000)),
                f"{rng.randrange(1000, 99999):05d}",
                rng.choice(CITIES),
                "Kunde",
                {},
                NOW - timedelta(days=rng.randrange(2000)),
                NOW,
            )
            for cid in range(start, min(start + CHUNK, n + 1))
        ]
        with db.session() as s:
            bulk_insert(s, Customer.__table__, columns, rows)  # type: ignore[arg-type]


def _events(db: Database, customers: int, n: int, rng: random.Random) -> None:
    names = [e for e, _ in EVENTS]
    weights = [w for _, w in EVENTS]
    columns = ["id", "source_id", "message_id", "customer_id", "origin_customer_id", "type",
               "name", "properties", "context", "occurred_at", "received_at"]  # fmt: skip
    for start in range(1, n + 1, CHUNK):
        ids = range(start, min(start + CHUNK, n + 1))
        chosen = rng.choices(names, weights, k=len(ids))
        rows = []
        for eid, name in zip(ids, chosen, strict=True):
            cid = rng.randrange(1, customers + 1)
            props = {"revenue": round(rng.uniform(5, 400), 2)} if name == "Order Completed" else {}
            at = NOW - timedelta(seconds=rng.randrange(730 * 86400))
            rows.append((eid, 1, f"b{eid}", cid, cid, "track", name, props, {}, at, at))
        with db.session() as s:
            bulk_insert(s, Event.__table__, columns, rows)  # type: ignore[arg-type]


def _holdings(db: Database, customers: int, n: int, rng: random.Random) -> None:
    columns = ["id", "customer_id", "origin_customer_id", "source_id", "kind", "reference",
               "line", "category", "amount", "currency", "status", "started_at"]  # fmt: skip
    for start in range(1, n + 1, CHUNK):
        rows = []
        for hid in range(start, min(start + CHUNK, n + 1)):
            cid = rng.randrange(1, customers + 1)
            category = rng.choice(CATEGORIES)
            kind = "contract" if category == "Kreditkarte" else "purchase"
            status = "active" if kind == "contract" else "completed"
            amount = round(rng.uniform(5, 300), 2)
            at = NOW - timedelta(seconds=rng.randrange(730 * 86400))
            rows.append((hid, cid, cid, 1, kind, f"O{hid}", "0", category, amount, "EUR",
                         status, at))  # fmt: skip
        with db.session() as s:
            bulk_insert(s, Holding.__table__, columns, rows)  # type: ignore[arg-type]


# --- measuring ---------------------------------------------------------------------------------


def count(url: str, repeat: int) -> None:
    db = Database(url)
    for label, rule in COUNT_RULES.items():
        node = parse(rule)
        times, found = [], 0
        for _ in range(repeat):
            with db.session(write=False) as s:
                started = time.perf_counter()
                found = service.count(s, node, NOW)
                times.append(time.perf_counter() - started)
        log(
            f"count  {label}: {found:,} customers; median {statistics.median(times):.2f} s, "
            f"best {min(times):.2f} s ({repeat} runs)"
        )
    db.dispose()


def segment_rules(rng: random.Random) -> list[tuple[str, str]]:
    """50 segments as marketing would have them: mixed, some with events, one of segments."""
    templates = [
        lambda: f'gender = "{rng.choice("mf")}" and age > {rng.randrange(20, 60)}',
        lambda: (
            f'city = "{rng.choice(CITIES)}" and has event "Order Completed" '
            f"in last {rng.choice([30, 90, 180])} days"
        ),
        lambda: (
            f'count(events "Page Viewed" in last {rng.choice([7, 30])} days) '
            f">= {rng.randrange(2, 6)}"
        ),
        lambda: f'has event "Email Opened" since 2026-0{rng.randrange(1, 9)}-01',
        lambda: (
            f'not has event "Email Clicked" in last {rng.choice([30, 90])} days '
            f"and age < {rng.randrange(30, 70)}"
        ),
        lambda: (
            'sum(properties.revenue of events "Order Completed" this year) > '
            f"{rng.randrange(100, 1000)}"
        ),
        lambda: f'postcode starts with "{rng.randrange(1, 10)}" and birthday in next 7 days',
        lambda: (
            f'has purchase where category = "{rng.choice(CATEGORIES)}" '
            f"in last {rng.choice([90, 365])} days"
        ),
        lambda: f"purchases_total > {rng.randrange(100, 900)}",
        lambda: 'consent.marketing.email = "granted" and gender = "f"',
        lambda: (
            f'has event "Product Viewed" where properties.category = "x" '
            f'in last 30 days or has event "Cart Updated" in last {rng.choice([1, 7])} days'
        ),
    ]
    rules = [(f"s{i:02d}", rng.choice(templates)()) for i in range(49)]
    rules.append(("s49", 'in segment "s00" or in segment "s01"'))
    return rules


def live(url: str, customers: int, samples: int, seed: int) -> None:
    rng = random.Random(seed)
    db = Database(url)
    with db.session() as s:
        for model in (SegmentMembership, SegmentVersion, Segment):
            s.execute(delete(model))
        # Earlier runs' "Segment Entered" events stay: deleting from 10,000,000 events
        # would scan them, and their message ids never clash with new stays'.
        for name, rule in segment_rules(rng):
            service.create(s, name, service.read_rule(s, rule))
    ids = [rng.randrange(1, customers + 1) for _ in range(samples)]
    with db.session() as s:  # the first pass writes the stays; the measured one reads
        service.reevaluate(s, ids, NOW)
    closures, full, loads, events_seen = [], [], [], []
    closures_cpu, full_cpu = [], []
    with db.session(write=False) as s:
        segments = _live(s)
        needs = loader.needs_of(segments.nodes, REGISTRY, NOW)
        s.execute(text("SELECT 1"))
        for cid in ids[:samples]:
            started = time.perf_counter()
            profile = loader.load_packed(s, [cid], needs, _open_stays_json)[0][cid]
            loads.append((time.perf_counter() - started) * 1000)
            events_seen.append(len(profile.events))
            ctx = compile_py.Context(NOW)
            started, cpu = time.perf_counter(), time.thread_time()
            for _, _, _, rule in segments.segments:
                rule(profile, ctx)
            closures.append((time.perf_counter() - started) * 1000)
            closures_cpu.append((time.thread_time() - cpu) * 1000)
    gc.collect()
    for cid in ids:
        with db.session() as s:
            # The transaction is the caller's (event intake's, which stored the event in
            # it): begun before the clock starts. On PostgreSQL psycopg sends BEGIN with
            # the first statement, a round trip the caller has paid already.
            s.execute(text("SELECT 1"))
            started, cpu = time.perf_counter(), time.thread_time()
            service.reevaluate(s, [cid], NOW)
            full.append((time.perf_counter() - started) * 1000)
            full_cpu.append((time.thread_time() - cpu) * 1000)
    log(f"live   50 segments, {samples} customers ({statistics.mean(events_seen):.1f} events "
        "loaded each); wall clock, and this thread's CPU time:")  # fmt: skip
    log(f"       the 50 closures over a loaded profile: {ms(closures)}; CPU {ms(closures_cpu)}")
    log(f"       loading the profile, open stays and consent (one statement): {ms(loads)}")
    log(f"       service.reevaluate, whole: {ms(full)}; CPU {ms(full_cpu)}")
    db.dispose()


def ingest_cost(kind: str, events: int, rounds: int, seed: int) -> None:
    """events.service.ingest with and without ix_events_name_occurred_at, alternating."""
    import tempfile

    from pydantic import TypeAdapter

    from bench.events_bench import message
    from bench.view_bench import database
    from relata.config import Settings
    from relata.events import service as intake
    from relata.events.schemas import Message

    adapter = TypeAdapter(Message)
    rng = random.Random(seed)
    warm = [adapter.validate_python(message(rng, f"w{i}")) for i in range(10_000)]
    timed = [adapter.validate_python(message(rng, f"m{i}")) for i in range(events)]
    rates: dict[str, list[float]] = {"with the index": [], "without": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            variants = list(rates) if r % 2 == 0 else list(reversed(rates))
            for variant in variants:
                with database(kind, PG, tmp) as url:
                    db = Database(url)
                    if variant == "without":
                        with db.engine.begin() as conn:
                            conn.execute(text("DROP INDEX ix_events_name_occurred_at"))
                    settings = Settings(database_url=url)
                    for i in range(0, len(warm), 500):
                        with db.session() as s:
                            intake.ingest(s, warm[i : i + 500], settings)
                    _analyze(db)
                    started = time.perf_counter()
                    for i in range(0, len(timed), 500):
                        with db.session() as s:
                            intake.ingest(s, timed[i : i + 500], settings)
                    rates[variant].append(len(timed) / (time.perf_counter() - started))
                    db.dispose()
    for variant, found in rates.items():
        runs = ", ".join(f"{x:,.0f}" for x in found)
        log(f"ingest {kind}, {variant}: {statistics.median(found):,.0f} events/s ({runs})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", help="database URL (default: the PostgreSQL bench schema)")
    parser.add_argument("--postgres", action="store_true", help=f"use {PG}, schema {SCHEMA}")
    parser.add_argument("--build", action="store_true")
    parser.add_argument("--count", action="store_true")
    parser.add_argument("--live", action="store_true")
    parser.add_argument(
        "--ingest",
        choices=["sqlite", "postgresql"],
        help="event intake with and without the segments' events index",
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--holdings", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    url = pg_url(PG) if args.postgres or not args.db else args.db
    if args.build:
        build(url, args.customers, args.events, args.holdings, args.seed)
    if args.count:
        count(url, args.repeat)
    if args.live:
        live(url, args.customers, args.samples, args.seed)
    if args.ingest:
        ingest_cost(args.ingest, 20_000, args.repeat, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
