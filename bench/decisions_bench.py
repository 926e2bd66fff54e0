"""Next best offer at size: 200 offers, 1,000,000 customers (issue 6).

Builds the data straight through the driver (customers, two holdings each, a
personalisation consent each, 200 offers through the catalogue service, two contact
policies, and decision_stats for ~1,000 context cells per offer as a busy system has
them), trains the collaborative model, then measures:

* in process: the engine's decision alone for a cached customer (the hot path: rules,
  policies, bandit, scoring, arbitration; ``Engine.decide``), loading a customer on a
  cache miss, and the whole ``service.decide`` with its writes (decision, event,
  impressions) and commit;
* memory: the snapshot (catalogue, compiled rules, counts, collaborative rows) and the
  cached customers (tracemalloc), and the process RSS;
* over HTTP: ``relata serve --workers N`` and an open-loop load of ``--rate`` decisions a
  second for ``--seconds`` (latency counted from the scheduled send time, so a server
  that falls behind is charged for the queue), for customers of a warm set and for
  customers drawn from all 1,000,000;
* response ingest: ``POST /v1/decision-responses`` in batches of 1,000, and in process,
  and the fold that turns them into counts.

.venv/bin/python -m bench.decisions_bench [--only sqlite|postgresql] [--customers 1000000]
    [--offers 200] [--rate 500] [--seconds 20] [--workers 2] [--no-http]
.venv/bin/python -m bench.decisions_bench --build URL   # once, then --reuse URL
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import os
import random
import resource
import sys
import tempfile
import threading
import time
import tracemalloc
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from bench.view_bench import AUTH, PG, Server, database, pct  # noqa: E402
from relata.config import Settings  # noqa: E402
from relata.db import Database, allocate_ids, bulk_insert, utcnow  # noqa: E402
from relata.decisions import offers, service, sync  # noqa: E402
from relata.decisions.bandit import cell_key, chain_labels  # noqa: E402
from relata.decisions.decide import Request  # noqa: E402
from relata.decisions.engine import Engine  # noqa: E402
from relata.decisions.models import DecisionStat  # noqa: E402
from relata.decisions.schemas import DecisionRequest, OfferWrite, PolicyWrite  # noqa: E402
from relata.decisions.training import train  # noqa: E402
from relata.ingest.sources import add_source  # noqa: E402

CATEGORIES = [f"cat-{i:02d}" for i in range(20)]
PRODUCTS = 2000
CHANNELS = ["web", "app", "email"]
PLACEMENTS = ["home", "product", "checkout", "account"]
CHUNK = 50_000


def log(*args: object) -> None:
    print(*args, flush=True)


def ms(samples: list[float]) -> str:
    v = [s * 1000 for s in samples]
    return f"p50 {pct(v, 50):.3f} ms · p99 {pct(v, 99):.3f} ms · max {max(v):.1f} ms (n={len(v)})"


# --------------------------------------------------------------------------- data


def build(url: str, customers: int, n_offers: int, seed: int) -> None:
    db = Database(url)
    rng = random.Random(seed)
    now = utcnow()
    started = time.perf_counter()
    with db.session() as s:
        source = add_source(s, "shop", "shop", 80)
        source_id = source.id
    born = datetime(1950, 1, 1).date()
    for start in range(0, customers, CHUNK):
        n = min(CHUNK, customers - start)
        with db.session() as s:
            cust = allocate_ids(s, _table("customers"), n)
            bulk_insert(
                s,
                _table("customers"),
                [
                    "id",
                    "status",
                    "provenance",
                    "first_name",
                    "birth_date",
                    "created_at",
                    "updated_at",
                ],
                [
                    (
                        c,
                        "active",
                        {},
                        "Kunde",
                        born + timedelta(days=rng.randrange(20000)),
                        now,
                        now,
                    )
                    for c in cust
                ],
            )
            rows = []
            for c in cust:
                for line in range(2):
                    p = rng.randrange(PRODUCTS)
                    rows.append(
                        (
                            c,
                            c,
                            source_id,
                            "purchase",
                            f"O{c}",
                            str(line),
                            f"p{p}",
                            CATEGORIES[p % len(CATEGORIES)],
                            "completed",
                            now - timedelta(days=rng.randrange(1, 700)),
                        )
                    )
            bulk_insert(
                s,
                _table("holdings"),
                [
                    "customer_id",
                    "origin_customer_id",
                    "source_id",
                    "kind",
                    "reference",
                    "line",
                    "product_id",
                    "category",
                    "status",
                    "started_at",
                ],
                rows,
            )
            bulk_insert(
                s,
                _table("consent_entries"),
                [
                    "customer_id",
                    "origin_customer_id",
                    "purpose",
                    "channel",
                    "action",
                    "occurred_at",
                    "recorded_at",
                    "via",
                    "evidence",
                    "covers",
                ],
                [
                    (c, c, "personalisation", "web", "grant", now, now, "import", {}, [c])
                    for c in cust
                ],
            )
        log(f"  {start + n:,} customers ({time.perf_counter() - started:.0f} s)")
    settings = Settings(database_url=url)
    with db.session() as s:
        for i in range(n_offers):
            p = rng.randrange(PRODUCTS)
            write = OfferWrite(
                key=f"offer-{i:03d}",
                name=f"Offer {i}",
                kind=rng.choice(["product", "banner", "coupon", "content"]),
                category=CATEGORIES[p % len(CATEGORIES)],
                product_id=f"p{p}",
                channels=rng.sample(CHANNELS, rng.randint(1, 3)),
                placements=rng.sample(PLACEMENTS, rng.randint(0, 2)),
                value=round(rng.uniform(1, 100), 2),
                weight=rng.choice([1, 1, 1, 0.5, 2]),
                rule=rng.choice(
                    [
                        None,
                        None,
                        "age > 30",
                        "age < 60",
                        'context.device = "mobile"',
                        "has purchase in last 365 days",
                        'has purchase where category = "cat-03"',
                    ]
                ),
                cap_daily=rng.choice([None, None, None, 50_000]),
            )
            offers.create_offer(s, write, settings)
        offers.create_policy(
            s,
            PolicyWrite(
                name="email-weekly",
                kind="frequency",
                channels=["email"],
                max_count=1,
                window_days=7,
            ),
            settings,
        )
        offers.create_policy(
            s, PolicyWrite(name="no-minors", kind="suppress", rule="age < 18"), settings
        )
    _stats(db, n_offers, rng)
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    log(f"data built in {time.perf_counter() - started:.0f} s")
    db.dispose()


def _table(name: str):  # type: ignore[no-untyped-def]
    from relata.db import Base

    return Base.metadata.tables[name]


def _stats(db: Database, n_offers: int, rng: random.Random) -> None:
    """Counts for the cells a busy system has seen: channel × placement × fav × tier."""
    labels = set()
    for ch in CHANNELS:
        for pl in [*PLACEMENTS, "?"]:
            for fav in CATEGORIES[:10]:
                for tier in ("1", "2-4"):
                    values = {"channel": ch, "placement": pl, "fav": fav, "tier": tier}
                    labels.update(chain_labels(("channel", "placement", "fav", "tier"), values))
    now = time.time()
    rows = []
    for offer_id in range(1, n_offers + 1):
        for label in labels:
            shows = rng.uniform(10, 2000)
            rows.append(
                (offer_id, cell_key(label), label, shows, shows * rng.uniform(0.01, 0.2), now, 1)
            )
    with db.session() as s:
        bulk_insert(
            s,
            DecisionStat.__table__,
            ["offer_id", "cell", "label", "shows", "wins", "at", "version"],
            rows,
        )
        sync.bump(s, stats=True)
    log(f"  {len(rows):,} bandit counts ({len(labels)} cells an offer)")


# --------------------------------------------------------------------------- in process


def request_body(rng: random.Random, customer: int) -> dict:
    return {
        "customer_id": customer,
        "channel": "web",
        "placement": rng.choice(PLACEMENTS),
        "context": {"device": rng.choice(["mobile", "desktop"])},
        "limit": 3,
    }


def in_process(url: str, customers: int, sample: int, seed: int) -> list[int]:
    settings = Settings(database_url=url, decision_control_share=0.05)
    db = Database(url)
    rng = random.Random(seed)
    engine = Engine(settings, seed=seed)
    with db.session() as s:
        started = time.perf_counter()
        result = train(s, settings)
        log(
            f"collaborative model trained in {time.perf_counter() - started:.1f} s: "
            f"{result['customers']:,} customers, {result['items']:,} items, "
            f"{result['similar_pairs']:,} neighbour pairs"
        )
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    with db.session(write=False) as s:
        started = time.perf_counter()
        snap = engine.sync(s, force=True)
        loaded = time.perf_counter() - started
    snap_mem = _grown(before)
    log(
        f"snapshot loaded in {loaded * 1000:.0f} ms: {len(snap.catalogue.offers)} offers, "
        f"{len(snap.stats.cells):,} cells, {snap_mem / 2**20:.1f} MiB"
    )
    ids = rng.sample(range(1, customers + 1), sample)
    now = utcnow()
    states = []
    measured = ids[: min(2000, len(ids))]
    before = tracemalloc.take_snapshot()
    with db.session(write=False) as s:
        states += [engine.customer(s, cid, now) for cid in measured]
    per_customer = _grown(before) / len(measured)
    tracemalloc.stop()
    cold = []
    with db.session(write=False) as s:
        for cid in ids[len(measured) :]:
            t = time.perf_counter()
            states.append(engine.customer(s, cid, now))
            cold.append(time.perf_counter() - t)
    if cold:
        log(f"customer load on a cache miss (3 indexed reads + features): {ms(cold)}")
    log(
        f"a cached customer takes {per_customer / 1024:.1f} KiB: "
        f"{settings.decision_cache_size:,} cached (the default bound) ≈ "
        f"{per_customer * settings.decision_cache_size / 2**20:.0f} MiB"
    )
    hot = []
    for state in states * 2:
        body = request_body(rng, state.customer_id)
        req = Request(body["channel"], body["placement"], body["context"], body["limit"])
        t = time.perf_counter()
        engine.decide(snap, state, req, now)
        hot.append(time.perf_counter() - t)
    log(f"in-process decision, cached customer (engine.decide): {ms(hot)}")
    full = []
    for cid in ids[:2000]:
        body = DecisionRequest.model_validate(request_body(rng, cid))
        t = time.perf_counter()
        with db.session() as s:
            service.decide(s, engine, settings, body)
        full.append(time.perf_counter() - t)
    log(f"service.decide with its writes and commit (cached customer): {ms(full)}")
    log(f"process RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (peak)")
    ingest_in_process(db, settings)
    db.dispose()
    return ids


def _grown(before: tracemalloc.Snapshot) -> float:
    after = tracemalloc.take_snapshot()
    return sum(d.size_diff for d in after.compare_to(before, "filename"))


def ingest_in_process(db: Database, settings: Settings) -> None:
    from relata.decisions.models import Decision
    from relata.decisions.schemas import ResponseItem

    with db.session(write=False) as s:
        # Decisions not clicked yet, so that a run on a --reuse database times new responses.
        rows = s.execute(
            text(
                "SELECT id, offers FROM decisions d WHERE NOT EXISTS (SELECT 1 FROM "
                "decision_responses r WHERE r.decision_id = d.id AND r.kind = 'click')"
            )
        ).all()
    items = []
    for did, offered in rows:
        data = offered if isinstance(offered, list) else json.loads(offered)
        for o in data:
            items.append(
                ResponseItem(decision_id=str(_uuid(did)), offer=o["offer_id"], type="click")
            )
    started = time.perf_counter()
    for i in range(0, len(items), 1000):
        with db.session() as s:
            service.record_responses(s, settings, items[i : i + 1000])
    took = time.perf_counter() - started
    log(
        f"response ingest in process: {len(items):,} responses in {took:.2f} s = "
        f"{len(items) / took:,.0f}/s (batches of 1,000)"
    )
    started = time.perf_counter()
    folded = 0
    with db.session() as s:
        folded = sync.fold(s, 30)
    took = time.perf_counter() - started
    log(f"fold: {folded:,} outcomes in {took:.2f} s = {folded / took:,.0f}/s")
    assert Decision  # imported for the table's metadata


def _uuid(value: object) -> object:
    import uuid

    return value if isinstance(value, uuid.UUID) else uuid.UUID(hex=str(value))


# --------------------------------------------------------------------------- HTTP


def open_loop(
    server: Server, bodies: list[bytes], rate: float, seconds: float, clients: int
) -> tuple[list[float], list[dict], int]:
    """Send at ``rate``/s on schedule; latency from the scheduled time. (lat, answers, errors)"""
    total = int(rate * seconds)
    start = time.perf_counter() + 0.5
    lock = threading.Lock()
    state = {"next": 0}
    latencies: list[float] = []
    answers: list[dict] = []
    errors = [0]

    def worker() -> None:
        conn = server.connection()
        while True:
            with lock:
                i = state["next"]
                state["next"] += 1
            if i >= total:
                break
            due = start + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            try:
                conn.request(
                    "POST",
                    "/v1/decisions",
                    body=bodies[i % len(bodies)],
                    headers={"content-type": "application/json", **AUTH},
                )
                response = conn.getresponse()
                data = response.read()
                done = time.perf_counter()
                if response.status != 200:
                    errors[0] += 1
                    continue
                with lock:
                    latencies.append(done - due)
                    if len(answers) < 50_000:
                        answers.append(json.loads(data))
            except (OSError, http.client.HTTPException):
                errors[0] += 1
                conn.close()
                conn = server.connection()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, answers, errors[0]


def fold_backlog(url: str) -> None:
    """Fold what earlier phases left unfolded (the in-process ingest leaves ~240,000
    outcomes): a server starting on such a backlog spends its first minute folding it,
    and that is not the steady state the latency goal is about."""
    db = Database(url)
    half_life = Settings(database_url=url).decision_half_life_days
    started, total = time.perf_counter(), 0
    while True:
        with db.session() as s:
            n = sync.fold(s, half_life)
        total += n
        if n < 5000:
            break
    db.dispose()
    log(f"backlog folded before the server starts: {total:,} outcomes in "
        f"{time.perf_counter() - started:.1f} s")  # fmt: skip


def over_http(url: str, ids: list[int], customers: int, args: argparse.Namespace) -> None:
    rng = random.Random(args.sample_seed + 1)
    for workers in args.workers:
        machine_speed(f" before {workers} worker(s)")
        fold_backlog(url)
        with Server(url, workers=workers) as server:
            warm = [json.dumps(request_body(rng, c)).encode() for c in ids[:1000]]
            answers: list[dict] = []
            for rate in args.rate:
                # Warm-up just before: each worker has seen the 1,000 customers about once
                # (cached entries live RELATA_DECISION_PROFILE_TTL_SECONDS, 30 s).
                open_loop(server, warm * workers, 200, len(warm) * workers / 200, args.clients)
                spent = _cpu(server)
                lat, found, errors = open_loop(server, warm, rate, args.seconds, args.clients)
                spent = _cpu(server, spent, len(lat) + errors)
                answers += found
                log(
                    f"HTTP, {workers} worker(s), {rate:g}/s open loop, 1,000 warm customers: "
                    f"{ms(lat)}; {errors} errors; {_offered(found)}; "
                    f"p99 ≤ 10 ms: {pct(lat, 99) * 1000 <= 10}; {spent}"
                )
                cold = [
                    json.dumps(request_body(rng, rng.randint(1, customers))).encode()
                    for _ in range(int(rate * args.seconds))
                ]
                spent = _cpu(server)
                lat2, found2, errors2 = open_loop(server, cold, rate, args.seconds, args.clients)
                spent = _cpu(server, spent, len(lat2) + errors2)
                log(
                    f"HTTP, {workers} worker(s), {rate:g}/s open loop, any of {customers:,}: "
                    f"{ms(lat2)}; {errors2} errors; {_offered(found2)}; "
                    f"p99 ≤ 10 ms: {pct(lat2, 99) * 1000 <= 10}; {spent}"
                )
            cpu_per_request(server, warm)  # before the ingest: no fold backlog in it
            ingest_http(server, answers)


def _offered(answers: list[dict]) -> str:
    """How much deciding the answers took: a customer whose every offer is capped gets an
    empty answer, which is cheap and says little about the latency of a real one."""
    if not answers:
        return "no answers"
    offers = sum(len(a["offers"]) for a in answers) / len(answers)
    eligible = sum(a.get("eligible", 0) for a in answers) / len(answers)
    return f"{offers:.1f} offers and {eligible:.0f} eligible an answer"


def _cpu(server: Server, before: Any = None, requests: int = 0) -> Any:
    """CPU seconds so far of the server's processes (its learner included), of
    PostgreSQL's, and of this load generator; with ``before``, what a request cost of
    each since, as text."""
    assert server.proc is not None
    usage = resource.getrusage(resource.RUSAGE_SELF)
    now = (_tree_cpu(server.proc.pid), _postgres_cpu(), usage.ru_utime + usage.ru_stime)
    if before is None:
        return now
    server_s, pg_s, client_s = (b - a for a, b in zip(before, now, strict=True))
    n = max(requests, 1)
    return (
        f"CPU a request: server {server_s / n * 1000:.2f} ms, PostgreSQL "
        f"{pg_s / n * 1000:.2f} ms, load generator {client_s / n * 1000:.2f} ms"
    )


def _postgres_cpu() -> float:
    """User + system CPU seconds of this machine's PostgreSQL processes (0 without one)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if not (proc / "cmdline").read_bytes().startswith(b"postgres"):
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            continue
    return total


def _tree_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, pending = 0.0, [pid]
    while pending:
        p = pending.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return total


def cpu_per_request(server: Server, bodies: list[bytes], n: int = 1000) -> None:
    """What the server spends on a decision, whatever the queue: its processes' CPU time
    over ``n`` sequential requests (background fold and writer included)."""
    assert server.proc is not None
    conn = server.connection()
    before = _tree_cpu(server.proc.pid)
    for i in range(n):
        conn.request(
            "POST",
            "/v1/decisions",
            body=bodies[i % len(bodies)],
            headers={"content-type": "application/json", **AUTH},
        )
        conn.getresponse().read()
    spent = _tree_cpu(server.proc.pid) - before
    log(
        f"server CPU a decision request (sequential, warm): {spent / n * 1000:.2f} ms "
        f"→ at most {n / spent:,.0f} requests/s per core"
    )


def ingest_http(server: Server, answers: list[dict]) -> None:
    items = [
        {"decision_id": a["decision_id"], "offer": o["offer_id"], "type": "click"}
        for a in answers
        for o in a["offers"]
    ]
    batches = [
        json.dumps({"responses": items[i : i + 1000]}).encode() for i in range(0, len(items), 1000)
    ]
    if not batches:
        return
    conn = server.connection()
    started = time.perf_counter()
    for body in batches:
        conn.request(
            "POST",
            "/v1/decision-responses",
            body=body,
            headers={"content-type": "application/json", **AUTH},
        )
        response = conn.getresponse()
        response.read()
        if response.status != 201:
            raise RuntimeError(f"responses refused: {response.status}")
    took = time.perf_counter() - started
    log(
        f"response ingest over HTTP: {len(items):,} in {took:.2f} s = {len(items) / took:,.0f}/s "
        "(batches of 1,000, one connection)"
    )


def machine_speed(when: str = "") -> None:
    """A yardstick for comparing runs on different days of a shared machine: the same pure
    Python loop everywhere (10 million additions, best of three). Printed again before each
    HTTP phase and at the end: this machine's speed has halved within one run."""
    best = float("inf")
    for _ in range(3):
        started, total = time.perf_counter(), 0
        for i in range(10_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    log(
        f"machine yardstick{when}: 10,000,000 additions in pure Python take {best:.2f} s "
        "(best of 3)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--postgres", default=PG)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--offers", type=int, default=200)
    parser.add_argument("--sample", type=int, default=20_000, help="customers measured")
    parser.add_argument("--rate", type=float, nargs="+", default=[500], help="requests/s")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument("--seed", type=int, default=6, help="of the data built")
    parser.add_argument(
        "--sample-seed",
        type=int,
        help="of the customers measured; by default new each run, because what a run "
        "decides stays in the database: customers measured before have seen every offer "
        "their caps allow, and deciding for them again measures empty decisions",
    )
    parser.add_argument("--reuse", help="a database URL built by an earlier run: skip building")
    parser.add_argument("--http-only", action="store_true", help="with --reuse")
    parser.add_argument("--build", help="migrate and fill this database URL, then stop")
    args = parser.parse_args()
    if args.sample_seed is None:
        args.sample_seed = random.SystemRandom().randrange(2**31)
    log(f"customers measured drawn with --sample-seed {args.sample_seed}")
    machine_speed()
    if args.build:
        db = Database(args.build)
        db.migrate()
        db.dispose()
        build(args.build, args.customers, args.offers, args.seed)
        return 0
    if args.reuse:
        if args.http_only:
            ids = random.Random(args.sample_seed).sample(range(1, args.customers + 1), 5000)
        else:
            ids = in_process(
                args.reuse, args.customers, min(args.sample, args.customers), args.sample_seed
            )
        if not args.no_http:
            over_http(args.reuse, ids[:5000], args.customers, args)
        machine_speed(" at the end")
        return 0
    kinds = [args.only] if args.only else ["sqlite", "postgresql"]
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            log(f"\n== {kind}: {args.customers:,} customers, {args.offers} offers")
            with database(kind, args.postgres, tmp) as url:
                build(url, args.customers, args.offers, args.seed)
                sample = min(args.sample, args.customers)
                ids = in_process(url, args.customers, sample, args.sample_seed)
                if not args.no_http:
                    over_http(url, ids[: max(1, min(len(ids), 5000))], args.customers, args)
    machine_speed(" at the end")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("RELATA_DECISION_CONTROL_SHARE", "0.05")
    sys.exit(main())
