"""Latency of real-time matching (`identity.matching.realtime.match_new`) per new customer.

Fills a fresh database with N customers (synthetic German golden records drawn from the
demo generator's name lists), trains a model on a sample, indexes every customer's
blocking keys (as `relata dedupe` does), then creates new customers one at a time, half
of them a dirty copy of an existing one, and times `match_new` for each (its own
transaction, as an import batch of one would run it). Prints p50/p99/max.

.venv/bin/python -m bench.realtime_bench [--customers 1000000] [--requests 1000]
    [--only sqlite|postgresql] [--postgres URL]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from faker import Faker
from sqlalchemy import create_engine, text

from relata.config import Settings
from relata.db import Database
from relata.demo import dirt, names
from relata.identity.matching import engine, realtime, rows, store
from relata.profiles.service import create_customers
from relata.profiles.survivorship import Golden

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BATCH = 50_000


class People:
    """Fast synthetic people: pools drawn from Faker once, then random choices."""

    def __init__(self, seed: int = 5) -> None:
        self.rng = random.Random(seed)
        fake = Faker("de_DE")
        fake.seed_instance(seed)
        self.fake = fake
        self.streets = [fake.street_name() for _ in range(5000)]
        self.places = [(fake.postcode(), fake.city()) for _ in range(3000)]

    def one(self) -> dict[str, Any]:
        rng = self.rng
        gender = rng.choice("mf")
        born = date(1935, 1, 1) + timedelta(days=rng.randrange(25_000))
        postcode, city = rng.choice(self.places)
        first = names.first_name(self.fake, rng, gender, born.year)
        last = names.last_name(self.fake, rng)
        person = {
            "first_name": first,
            "last_name": last,
            "birth_date": born.isoformat(),
            "gender": gender,
            "street": rng.choice(self.streets),
            "house_number": str(rng.randint(1, 120)),
            "postcode": postcode,
            "city": city,
        }
        if rng.random() < 0.7:
            person["email"] = f"{names.ascii_slug(first)}.{names.ascii_slug(last)}"
            person["email"] += f"{rng.randint(1, 9999)}@{names.provider(rng)}"
        if rng.random() < 0.6:
            person["phone"] = f"+4917{rng.randrange(10**8, 10**9)}"
        return person

    def dirty(self, person: dict[str, Any]) -> dict[str, Any]:
        record = dict(person)
        record["first_name"] = dirt.typo(self.rng, record["first_name"])
        record["last_name"] = names.transliterate(record["last_name"])
        record.pop("email", None)
        record.pop("phone", None)
        return record


def _golden(data: dict[str, Any]) -> Golden:
    return Golden(dict(data), {})


def fill(db: Database, people: People, count: int) -> list[dict[str, Any]]:
    kept: list[dict[str, Any]] = []
    started = time.perf_counter()
    for start in range(0, count, BATCH):
        batch = [people.one() for _ in range(min(BATCH, count - start))]
        kept.extend(batch[:: max(1, count // 20_000)])
        with db.session() as session:
            create_customers(session, [_golden(p) for p in batch])
        print(f"  {start + len(batch):,} customers ({time.perf_counter() - started:.0f} s)")
    return kept


def prepare(db: Database, settings: Settings, people: People, count: int) -> list[dict]:
    db.migrate()
    sample = fill(db, people, count)
    started = time.perf_counter()
    with db.session(write=False) as session:
        built = store.load_rows(session)
    built.drop_crowded_keys()
    print(f"  features of {len(built):,} rows ({time.perf_counter() - started:.0f} s)")
    started = time.perf_counter()
    training = rows.build(enumerate((*sample, *(people.dirty(p) for p in sample[:5000])), 1))
    trained = engine.train(engine.arrow_table(training.table_columns()), u_max_pairs=1e6)
    print(f"  model trained on {len(training):,} rows ({time.perf_counter() - started:.0f} s)")
    started = time.perf_counter()
    with db.session() as session:
        store.save_model(session, trained, "duckdb")
        keys = store.rebuild_keys(session, built)
        store.update_term_frequencies(
            session, 1, engine.term_frequencies(engine.arrow_table(built.table_columns()))
        )
    print(f"  {keys:,} blocking keys indexed ({time.perf_counter() - started:.0f} s)")
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    return sample


def measure(db: Database, settings: Settings, people: People, sample: list, n: int) -> None:
    latencies, merged, queued = [], 0, 0
    rng = random.Random(9)
    for i in range(n):
        record = people.dirty(rng.choice(sample)) if i % 2 == 0 else people.one()
        with db.session() as session:
            [cid] = create_customers(session, [_golden(record)])
            started = time.perf_counter()
            result = realtime.match_new(session, [cid], settings)
            latencies.append((time.perf_counter() - started) * 1000)
        merged += len(result.merged)
        queued += len(result.queued)
    latencies.sort()
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    print(
        f"  match_new over {n:,} new customers: p50 {statistics.median(latencies):.1f} ms, "
        f"p99 {p99:.1f} ms, max {latencies[-1]:.1f} ms; merged {merged}, queued {queued}; "
        f"goal p99 ≤ 50 ms: {'met' if p99 <= 50 else 'NOT met'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--postgres", default=PG)
    args = parser.parse_args()
    for kind in ("sqlite", "postgresql"):
        if args.only and args.only != kind:
            continue
        print(f"{kind}: {args.customers:,} customers")
        schema = None
        if kind == "sqlite":
            url = f"sqlite:///{Path(tempfile.mkdtemp()) / 'realtime.db'}"
        else:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(args.postgres)
            with admin.begin() as conn:
                conn.execute(text(f"CREATE SCHEMA {schema}"))
            url = f"{args.postgres}?options=-csearch_path%3D{schema}"
        db = Database(url)
        settings = Settings(database_url=url)
        try:
            people = People()
            sample = prepare(db, settings, people, args.customers)
            measure(db, settings, people, sample, args.requests)
        finally:
            db.dispose()
            if schema:
                with admin.begin() as conn:
                    conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
                admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
