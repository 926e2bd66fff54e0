"""Latency of the 360° view of one busy customer, in process and over HTTP.

The customer has 10,000 events (page, track, 100 orders with 2 products each, so
200 holdings), three source records (web, shop, crm) and an anonymous history that
an identify merged in. A few thousand other customers with events of their own sit
in the same tables, so that the reads go through the indexes and not a scan.

Measured, each over --requests requests (repeated --repeat times; medians quoted):

* in process: ``relata.profiles.view.view(session, customer, page_size=50)`` in a
  read session (``view()`` alone, then session + resolve + view + JSON, as the API
  does it),
* the same with a ``before`` cursor deep in the history (page 100 of 50 events),
* over HTTP on loopback: ``relata serve`` as a subprocess, ``GET /v1/customers/{id}``
  on one keep-alive connection sequentially, then from 4 threads at once, then the
  deep page and ``/timeline`` with the cursor; and a typical customer for contrast.

.venv/bin/python -m bench.view_bench [--only sqlite|postgresql] [--events 10000]
    [--others 3000] [--requests 500] [--repeat 3] [--threads 4] [--workers 1]
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: `python bench/view_bench.py`
    sys.path.insert(0, str(ROOT))

from pydantic import TypeAdapter  # noqa: E402
from sqlalchemy import create_engine, func, select, text  # noqa: E402

from relata.config import Settings  # noqa: E402
from relata.db import Database  # noqa: E402
from relata.events import service as events  # noqa: E402
from relata.events.models import Event  # noqa: E402
from relata.events.schemas import Message  # noqa: E402
from relata.ingest.models import SourceRecord  # noqa: E402
from relata.ingest.normalise import normalise_record  # noqa: E402
from relata.ingest.records import RecordInput, upsert_records  # noqa: E402
from relata.ingest.sources import add_source, require_source  # noqa: E402
from relata.profiles import service as profiles  # noqa: E402
from relata.profiles import view as views  # noqa: E402
from relata.profiles.models import Holding  # noqa: E402

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
GOAL_P99_MS = 20.0
PAGE_SIZE = 50
DEEP_PAGE = 100
WARMUP = 30
_message = TypeAdapter(Message)
# Every route but /health needs credentials: Server puts an admin API key here.
AUTH: dict[str, str] = {}

# --------------------------------------------------------------------------- helpers
# (events_bench imports these)


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile, q in [0, 100]."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def stats_ms(samples: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples]
    return {
        "p50": pct(ms, 50),
        "p99": pct(ms, 99),
        "mean": statistics.fmean(ms),
        "max": max(ms),
        "n": len(ms),
    }


@contextmanager
def database(kind: str, pg_url: str, tmp: str) -> Iterator[str]:
    """A fresh, migrated database URL: a SQLite file, or a PostgreSQL schema dropped after."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp}/bench-{uuid.uuid4().hex[:6]}.db"
        db = Database(url)
        db.migrate()
        db.dispose()
        yield url
        return
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        sep = "&" if "?" in pg_url else "?"
        url = f"{pg_url}{sep}options=-csearch_path%3D{schema}"
        db = Database(url)
        db.migrate()
        db.dispose()
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``relata serve`` as a subprocess on a free loopback port."""

    def __init__(self, url: str, workers: int = 1, log_dir: str | None = None) -> None:
        self.url = url
        self.workers = workers
        self.port = free_port()
        self.log_dir = log_dir or tempfile.gettempdir()
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        from relata.auth.service import create_api_key
        from relata.db import utcnow

        db = Database(self.url)
        try:
            db.migrate()
            with db.session() as session:
                _, key = create_api_key(session, f"bench-{self.port}", ["admin"], utcnow())
        finally:
            db.dispose()
        AUTH["Authorization"] = f"Bearer {key}"
        relata = Path(sys.executable).parent / "relata"
        cmd = (
            [str(relata)]
            if relata.exists()
            else [sys.executable, "-c", "from relata.cli import app; app()"]
        )
        cmd += ["serve", "--host", "127.0.0.1", "--port", str(self.port)]
        cmd += ["--workers", str(self.workers)]
        env = {**os.environ, "RELATA_DATABASE_URL": self.url}
        self.log = open(Path(self.log_dir) / f"server-{self.port}.log", "wb")
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self._tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/health")
                ok = conn.getresponse().status == 200
                conn.close()
                if ok:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.__exit__(None, None, None)
        raise RuntimeError(f"server did not answer /health within 90 s: {self._tail()}")

    def log_text(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    def _tail(self) -> str:
        return self.log_text()[-2000:]

    def __exit__(self, exc_type: object = None, *exc: object) -> None:
        proc = self.proc
        if proc is None:
            return
        if exc_type is not None:
            print(f"--- server log (tail):\n{self._tail()}", file=sys.stderr)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                # Our own process group (start_new_session): the server and its workers.
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
        self.log.close()
        self.proc = None

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)


def http_get(conn: http.client.HTTPConnection, path: str) -> bytes:
    conn.request("GET", path, headers=AUTH)
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status} {body[:300]!r}")
    return body


def http_post(conn: http.client.HTTPConnection, path: str, body: bytes) -> dict:
    conn.request("POST", path, body=body, headers={"content-type": "application/json", **AUTH})
    response = conn.getresponse()
    data = response.read()
    if response.status not in (200, 202):
        raise RuntimeError(f"POST {path}: {response.status} {data[:300]!r}")
    return json.loads(data)


def timed(fn: Callable[[], object], n: int, warmup: int = WARMUP) -> list[float]:
    for _ in range(warmup):
        fn()
    samples = []
    clock = time.perf_counter
    for _ in range(n):
        started = clock()
        fn()
        samples.append(clock() - started)
    return samples


def timed_threads(
    make_fn: Callable[[], Callable[[], object]], n: int, threads: int
) -> tuple[list[float], float]:
    """n calls over ``threads`` threads, each with its own ``make_fn()``: (samples, req/s)."""
    per = math.ceil(n / threads)
    results: list[list[float]] = [[] for _ in range(threads)]
    fns = [make_fn() for _ in range(threads)]
    for fn in fns:
        for _ in range(WARMUP // threads + 1):
            fn()
    barrier = threading.Barrier(threads + 1)

    def work(i: int) -> None:
        fn, out, clock = fns[i], results[i], time.perf_counter
        barrier.wait()
        for _ in range(per):
            started = clock()
            fn()
            out.append(clock() - started)

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    samples = [s for r in results for s in r]
    return samples, len(samples) / elapsed


# --------------------------------------------------------------------------- data

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0"
FIRST_NAMES = ["Anna", "Jürgen", "Lena", "Jonas", "Mia"]
PAGES = ["/", "/damen", "/herren", "/sale", "/laufschuhe", "/jacken", "/warenkorb", "/konto"]
PRODUCTS = [
    (f"SKU-{i:04d}", f"Artikel {i}", cat) for i, cat in enumerate(["Schuhe", "Jacken"] * 20)
]


def _context(rng: random.Random, path: str) -> dict:
    return {
        "ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
        "userAgent": UA,
        "locale": "de-DE",
        "page": {"path": path, "url": f"https://shop.example.de{path}", "referrer": ""},
    }


def activity(
    rng: random.Random, who: dict, mid: str, at: datetime, order_no: int | None = None
) -> dict:
    """One page/track/order message for ``who`` ({"userId": …} or {"anonymousId": …})."""
    ts = at.isoformat().replace("+00:00", "Z")
    path = rng.choice(PAGES)
    base = {**who, "messageId": mid, "timestamp": ts, "context": _context(rng, path)}
    if order_no is not None:
        items = rng.sample(PRODUCTS, 2)
        return {
            **base,
            "type": "track",
            "event": "Order Completed",
            "properties": {
                "order_id": f"O-{mid}",
                "currency": "EUR",
                "products": [
                    {
                        "product_id": sku,
                        "name": name,
                        "category": cat,
                        "price": round(rng.uniform(5, 150), 2),
                        "quantity": rng.randint(1, 3),
                    }
                    for sku, name, cat in items
                ],
            },
        }
    if rng.random() < 0.65:
        return {**base, "type": "page", "name": path.strip("/") or "Start", "properties": {}}
    sku, name, cat = rng.choice(PRODUCTS)
    return {
        **base,
        "type": "track",
        "event": rng.choice(["Product Viewed", "Product Added", "Search"]),
        "properties": {"product_id": sku, "name": name, "category": cat, "price": 49.9},
    }


def _validated(payloads: list[dict]) -> list[object]:
    return [_message.validate_python(p) for p in payloads]


def build(url: str, n_events: int, others: int, per_other: int, seed: int = 7) -> dict[str, int]:
    """Fill the database through the services; returns the ids to look at."""
    rng = random.Random(seed)
    settings = Settings(database_url=url)
    db = Database(url)
    with db.session() as s:
        add_source(s, "shop", "shop", 80)
        add_source(s, "crm", "hotline", 60)
        shop = require_source(s, "shop")
        # Shop records for the busy customer and every other customer (linked by e-mail).
        inputs = [
            RecordInput(
                f"K{i}",
                normalise_record(
                    {
                        "first_name": FIRST_NAMES[i % len(FIRST_NAMES)],
                        "last_name": rng.choice(["Müller", "Schmidt", "Weber", "Öztürk"]),
                        "email": f"kunde{i}@example.de",
                        "street": f"Hauptstr. {i % 90 + 1}",
                        "postcode": f"{10000 + i % 89999:05d}",
                        "city": "Berlin",
                        "customer_number": f"K{i}",
                    }
                ).data,
            )
            for i in range(others + 1)
        ]
        for i in range(0, len(inputs), 2000):
            upsert_records(s, shop, inputs[i : i + 2000], settings)
        crm = require_source(s, "crm")
        upsert_records(
            s,
            crm,
            [
                RecordInput(
                    "C0",
                    normalise_record({"email": "kunde0@example.de", "phone": "0171 1234567"}).data,
                    {"segment": "gold"},
                )
            ],
            settings,
        )

    start = datetime(2025, 1, 1, tzinfo=UTC)
    span = timedelta(days=365).total_seconds()
    msgs: list[tuple[datetime, dict]] = []
    # The busy customer: the first tenth anonymous, then identified (merging that history).
    n_orders = min(100, n_events // 20)
    order_at = set(rng.sample(range(n_events), n_orders))
    for i in range(n_events):
        at = start + timedelta(seconds=span * i / n_events)
        who = {"anonymousId": "anon-0"} if i < n_events // 10 else {"userId": "U0"}
        msgs.append((at, activity(rng, who, f"t{i}", at, i if i in order_at else None)))
    for j in range(1, others + 1):
        for k in range(per_other):
            at = start + timedelta(seconds=rng.uniform(0, span))
            msgs.append((at, activity(rng, {"userId": f"U{j}"}, f"o{j}-{k}", at)))
    msgs.sort(key=lambda m: m[0])
    identify_at = start + timedelta(seconds=span / 10)

    def identify(j: int, at: datetime) -> dict:
        return {
            "type": "identify",
            "userId": f"U{j}",
            "messageId": f"id{j}",
            "timestamp": at.isoformat().replace("+00:00", "Z"),
            "traits": {"email": f"kunde{j}@example.de", "firstName": FIRST_NAMES[j % 5]},
            **({"anonymousId": "anon-0"} if j == 0 else {}),
        }

    ordered = [identify(j, start) for j in range(1, others + 1)]
    ordered += [m for at, m in msgs if at < identify_at]
    ordered.append(identify(0, identify_at))
    ordered += [m for at, m in msgs if at >= identify_at]
    for i in range(0, len(ordered), 1000):
        with db.session() as s:
            events.ingest(s, _validated(ordered[i : i + 1000]), settings)

    with db.session(write=False) as s:
        web = require_source(s, "web")

        def customer_of(key: str) -> int:
            cid = s.scalar(
                select(SourceRecord.customer_id).where(
                    SourceRecord.source_id == web.id, SourceRecord.source_key == key
                )
            )
            found = profiles.resolve(s, cid)
            assert found is not None
            return found.id

        busy, typical = customer_of("U0"), customer_of("U1")
        counts = {
            "busy": busy,
            "typical": typical,
            "busy_events": s.scalar(select(func.count()).where(Event.customer_id == busy)),
            "busy_holdings": s.scalar(select(func.count()).where(Holding.customer_id == busy)),
            "busy_records": s.scalar(select(func.count()).where(SourceRecord.customer_id == busy)),
            "events": s.scalar(select(func.count()).select_from(Event)),
        }
    if db.is_sqlite:
        with db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    else:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    db.dispose()
    return counts


def deep_cursor(db: Database, customer_id: int, page: int) -> str:
    """The ``before`` cursor that shows page ``page`` (1 = newest) of the timeline."""
    cursor = None
    with db.session(write=False) as s:
        for _ in range(page - 1):
            cursor = views.timeline_page(s, customer_id, PAGE_SIZE, cursor).next_cursor
            assert cursor is not None, "timeline shorter than the page asked for"
    assert cursor is not None
    return cursor


# --------------------------------------------------------------------------- measuring


def report(label: str, runs: list[dict[str, float]], extra: str = "") -> dict[str, float]:
    med = {k: statistics.median(r[k] for r in runs) for k in ("p50", "p99", "mean")}
    each = " ".join(f"{r['p99']:.1f}" for r in runs)
    met = "met" if med["p99"] <= GOAL_P99_MS else "NOT met"
    print(
        f"  {label:<56} p50 {med['p50']:6.2f} ms  p99 {med['p99']:6.2f} ms  "
        f"mean {med['mean']:6.2f} ms  (p99 per run: {each}; n={runs[0]['n']:.0f}/run) "
        f"goal p99<={GOAL_P99_MS:.0f} ms {met}{extra}"
    )
    return med


def in_process(db: Database, ids: dict[str, int], cursor: str, args: argparse.Namespace) -> None:
    """view() alone, and the whole of it (session, resolve, view, JSON), from the same calls."""
    print("in process")
    cases = [
        ("page 1", ids["busy"], None),
        (f"page {args.deep_page} (before=cursor)", ids["busy"], cursor),
    ]
    for label, customer_id, before in cases:
        inner: list[float] = []

        def call(
            cid: int = customer_id, before: str | None = before, inner: list[float] = inner
        ) -> object:
            with db.session(write=False) as s:
                customer = profiles.resolve(s, cid)
                assert customer is not None
                started = time.perf_counter()
                result = views.view(s, customer, page_size=PAGE_SIZE, before=before)
                inner.append(time.perf_counter() - started)
                return result.model_dump_json()

        outer_runs, inner_runs = [], []
        for _ in range(args.repeat):
            outer_runs.append(stats_ms(timed(call, args.requests)))
            inner_runs.append(stats_ms(inner[-args.requests :]))
        report(f"view() {label}", inner_runs)
        report(f"  session+resolve+view()+JSON, {label}", outer_runs)


def over_http(url: str, ids: dict[str, int], cursor: str, args: argparse.Namespace) -> None:
    busy = ids["busy"]
    with tempfile.TemporaryDirectory() as logs, Server(url, args.workers, logs) as server:
        print(f"over HTTP (relata serve --workers {args.workers}, keep-alive, loopback)")
        conn = server.connection()
        size = len(http_get(conn, f"/v1/customers/{busy}"))
        deep = len(http_get(conn, f"/v1/customers/{busy}?before={cursor}"))
        page1 = ("GET /v1/customers/{id}", f"/v1/customers/{busy}")
        cases = [
            page1,
            (
                f"GET /v1/customers/{{id}}?before= page {args.deep_page}",
                f"{page1[1]}?before={cursor}",
            ),
            ("GET /v1/customers/{typical id}", f"/v1/customers/{ids['typical']}"),
        ]
        for label, path in cases:
            runs = [
                stats_ms(timed(lambda p=path: http_get(conn, p), args.requests))
                for _ in range(args.repeat)
            ]
            report(label, runs)
        conn.close()
        print(f"  (response sizes: page 1 {size / 1000:.0f} kB, deep page {deep / 1000:.0f} kB)")
        if args.threads > 1:
            label, path = page1
            runs, rates = [], []
            for _ in range(args.repeat):

                def make(p: str = path) -> Callable[[], object]:
                    c = server.connection()
                    return lambda: http_get(c, p)

                samples, rate = timed_threads(make, args.requests, args.threads)
                runs.append(stats_ms(samples))
                rates.append(rate)
            report(
                f"{label}, {args.threads} client threads",
                runs,
                f"; {statistics.median(rates):,.0f} req/s",
            )


def run(kind: str, args: argparse.Namespace, tmp: str) -> None:
    with database(kind, args.postgres, tmp) as url:
        started = time.perf_counter()
        ids = build(url, args.events, args.others, args.per_other)
        print(
            f"\n== {kind}: busy customer {ids['busy']} with {ids['busy_events']:,} events, "
            f"{ids['busy_holdings']} holdings, {ids['busy_records']} source records; "
            f"{ids['events']:,} events in all ({args.others:,} other customers); "
            f"built in {time.perf_counter() - started:.0f} s"
        )
        db = Database(url)
        try:
            cursor = deep_cursor(db, ids["busy"], args.deep_page)
            if not args.http_only:
                in_process(db, ids, cursor, args)
        finally:
            db.dispose()
        if not args.no_http:
            over_http(url, ids, cursor, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--postgres", default=PG)
    parser.add_argument("--events", type=int, default=10_000, help="events of the busy customer")
    parser.add_argument("--others", type=int, default=2_000, help="other customers")
    parser.add_argument("--per-other", type=int, default=10, help="events per other customer")
    parser.add_argument("--deep-page", type=int, default=DEEP_PAGE, help="page of the cursor case")
    parser.add_argument("--requests", type=int, default=500, help="timed requests per case")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (medians quoted)")
    parser.add_argument("--threads", type=int, default=4, help="concurrent HTTP clients")
    parser.add_argument("--workers", type=int, default=1, help="relata serve --workers")
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument("--http-only", action="store_true")
    args = parser.parse_args()
    print(
        f"360° view benchmark: page_size={PAGE_SIZE}, {args.requests} requests x {args.repeat} "
        f"runs per case, goal p99 <= {GOAL_P99_MS:.0f} ms"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("sqlite", "postgresql"):
            if args.only in (None, kind):
                run(kind, args, tmp)


if __name__ == "__main__":
    main()
