"""Throughput of ``POST /v1/events`` batch ingest over HTTP on loopback.

The traffic mix, per message: 70 % page/track of anonymous visitors (about 1,000
distinct anonymousIds), 20 % track with a userId, 5 % identify with traits (e-mail,
names; 300 of the users identify from one of the anonymous browsers, which merges
that visitor's profile into them), 5 % Order Completed with 1-3 products (holdings).

``relata serve`` runs as a subprocess on a fresh database; a warm-up run creates the
population (customers, anonymous profiles, merges) and ANALYZE then gives the planner
statistics, as autovacuum would (it is off on some test servers: see README), so that
the timed runs measure the steady state. Then, for each batch size (100, 500) and
number of concurrent clients (1, 2), --runs runs of --events new events each (fresh
messageIds), each client on one keep-alive connection; and the duplicate path: the
same batches posted again, every message counted as a duplicate. events/s are
medians of runs.

.venv/bin/python -m bench.events_bench [--only sqlite|postgresql] [--events 10000]
    [--runs 3] [--batch 100 500] [--clients 1 2] [--workers 1]
"""

from __future__ import annotations

import argparse
import http.client
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: `python bench/events_bench.py`
    sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from bench.view_bench import PG, Server, database, http_post  # noqa: E402
from relata.db import Database  # noqa: E402

ANONYMOUS = 1_000
USERS = 2_000
IDENTIFYING_BROWSERS = 300  # users 0..299 identify from browser anon-0..anon-299
PAGES = ["/", "/damen", "/herren", "/sale", "/laufschuhe", "/jacken", "/warenkorb", "/konto"]
FIRST = ["Anna", "Jürgen", "Lena", "Lukas", "Mia", "Jonas", "Sophie", "Leon", "Marie", "Paul"]
LAST = ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Öztürk"]
DEADLOCK = "OperationalError: (psycopg.errors.DeadlockDetected)"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0"


def message(rng: random.Random, mid: str) -> dict:
    """One message of the mix."""
    path = rng.choice(PAGES)
    ts = f"2026-{rng.randint(1, 10):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
    ts += f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z"
    context = {
        "ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
        "userAgent": UA,
        "locale": "de-DE",
        "page": {"path": path, "url": f"https://shop.example.de{path}"},
    }
    base = {"messageId": mid, "timestamp": ts, "context": context}
    r = rng.random()
    sku = f"SKU-{rng.randrange(500):04d}"
    if r < 0.70:
        who = {"anonymousId": f"anon-{rng.randrange(ANONYMOUS)}"}
        if rng.random() < 0.6:
            return {**base, **who, "type": "page", "name": path.strip("/") or "Start"}
        event = rng.choice(["Product Viewed", "Product Added", "Products Searched"])
        return {**base, **who, "type": "track", "event": event, "properties": {"sku": sku}}
    user = rng.randrange(USERS)
    who = {"userId": f"U{user}"}
    if r < 0.90:
        event = rng.choice(["Product Viewed", "Product Added", "Checkout Started"])
        return {
            **base,
            **who,
            "type": "track",
            "event": event,
            "properties": {"product_id": sku, "price": 49.9},
        }
    if r < 0.95:
        if user < IDENTIFYING_BROWSERS:
            who["anonymousId"] = f"anon-{user}"
        return {
            **base,
            **who,
            "type": "identify",
            "traits": {
                "email": f"user{user}@example.de",
                "firstName": FIRST[user % len(FIRST)],
                "lastName": LAST[user % len(LAST)],
                "newsletter": rng.random() < 0.5,
            },
        }
    products = [
        {
            "product_id": f"SKU-{rng.randrange(500):04d}",
            "name": "Artikel",
            "category": rng.choice(["Schuhe", "Jacken", "Hosen"]),
            "price": round(rng.uniform(5, 200), 2),
            "quantity": rng.randint(1, 3),
        }
        for _ in range(rng.randint(1, 3))
    ]
    return {
        **base,
        **who,
        "type": "track",
        "event": "Order Completed",
        "properties": {"order_id": f"O-{mid}", "currency": "EUR", "products": products},
    }


def bodies(prefix: str, events: int, batch: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    msgs = [message(rng, f"{prefix}-{i}") for i in range(events)]
    return [orjson.dumps({"batch": msgs[i : i + batch]}) for i in range(0, len(msgs), batch)]


class Posted(NamedTuple):
    seconds: float
    accepted: int
    duplicates: int
    failed: list[str]  # one line per batch the server refused (HTTP 5xx and the like)


def post_all(server: Server, batches: list[bytes], clients: int) -> Posted:
    """Post the batches from ``clients`` threads, each on one keep-alive connection."""
    shares = [batches[i::clients] for i in range(clients)]
    totals = [[0, 0] for _ in range(clients)]
    failed: list[str] = []
    conns = [server.connection() for _ in range(clients)]

    def work(i: int) -> None:
        for body in shares[i]:
            try:
                result = http_post(conns[i], "/v1/events", body)
            except (RuntimeError, OSError, http.client.HTTPException) as exc:
                # An error status (the server then closes the connection): counted, and
                # the run goes on, on a new connection.
                failed.append(str(exc)[:200])
                conns[i].close()
                conns[i] = server.connection()
                continue
            totals[i][0] += result["accepted"]
            totals[i][1] += result["duplicates"]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    for c in conns:
        c.close()
    return Posted(elapsed, sum(t[0] for t in totals), sum(t[1] for t in totals), failed)


def analyze(url: str) -> None:
    """Fresh statistics, as autovacuum would gather them (it may be off on a test server)."""
    db = Database(url)
    try:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    finally:
        db.dispose()


def run(kind: str, args: argparse.Namespace, tmp: str) -> dict[str, float]:
    results: dict[str, float] = {}
    with database(kind, args.postgres, tmp) as url, Server(url, args.workers, tmp) as server:
        print(f"\n== {kind} (relata serve --workers {args.workers})")
        started = time.perf_counter()
        warm = bodies("warm", args.warmup, 500, seed=1)
        w = post_all(server, warm, 1)
        if w.failed:
            raise RuntimeError(f"warm-up: {len(w.failed)} batches refused: {w.failed[0]}")
        print(
            f"  warm-up: {w.accepted:,} events in {w.seconds:.1f} s "
            f"({w.accepted / w.seconds:,.0f} events/s, batches of 500, creates the population)"
        )
        if not args.no_analyze:
            analyze(url)
        seed = 100
        for batch in args.batch:
            for clients in args.clients:
                rates, dup_rates = [], []
                failures: list[str] = []
                deadlocks_before = server.log_text().count(DEADLOCK)
                for run_no in range(args.runs):
                    seed += 1
                    batches = bodies(f"b{batch}c{clients}r{run_no}", args.events, batch, seed)
                    first = post_all(server, batches, clients)
                    again = post_all(server, batches, clients)
                    failures += first.failed + again.failed
                    if not first.failed and (first.accepted, first.duplicates) != (args.events, 0):
                        raise RuntimeError(f"expected {args.events} new events, got {first}")
                    if not failures and (again.accepted, again.duplicates) != (0, args.events):
                        raise RuntimeError(f"expected {args.events} duplicates, got {again}")
                    rates.append(first.accepted / first.seconds)
                    dup_rates.append(again.duplicates / again.seconds)
                label = f"batch {batch:>3}, {clients} client{'s' if clients > 1 else ' '}"
                new, dup = statistics.median(rates), statistics.median(dup_rates)
                results[f"{kind} {label} new"] = new
                results[f"{kind} {label} duplicates"] = dup
                print(
                    f"  {label}: new {new:8,.0f} events/s "
                    f"(runs: {', '.join(f'{r:,.0f}' for r in rates)}; "
                    f"{new / batch:,.1f} batches/s)   "
                    f"duplicates {dup:8,.0f} events/s "
                    f"(runs: {', '.join(f'{r:,.0f}' for r in dup_rates)})"
                )
                if failures:
                    deadlocks = server.log_text().count(DEADLOCK) - deadlocks_before
                    print(
                        f"    !! {len(failures)} batches refused ({failures[0]}); "
                        f"server log: {deadlocks} x deadlock detected; rates count accepted events"
                    )
        print(f"  ({time.perf_counter() - started:.0f} s)")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--postgres", default=PG)
    parser.add_argument("--events", type=int, default=10_000, help="new events per timed run")
    parser.add_argument("--warmup", type=int, default=10_000, help="events of the warm-up run")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per case (median)")
    parser.add_argument("--batch", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--workers", type=int, default=1, help="relata serve --workers")
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="skip ANALYZE after the warm-up (PostgreSQL then plans with empty-table statistics)",
    )
    args = parser.parse_args()
    print(
        f"POST /v1/events throughput: {args.events:,} events per run, {args.runs} runs per case "
        f"(median), mix 70% anonymous page/track, 20% user track, 5% identify, 5% orders"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("sqlite", "postgresql"):
            if args.only in (None, kind):
                run(kind, args, tmp)


if __name__ == "__main__":
    main()
