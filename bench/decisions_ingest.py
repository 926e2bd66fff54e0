"""Response ingest on a database built by ``bench.decisions_bench``: make fresh decisions,
then click every offer they showed, in batches of 1,000, in process and over HTTP.

Each run clicks only decisions not clicked yet, so runs can follow each other; this makes
``--decisions`` new ones first (through ``service.make`` and the group-commit writer, as
the API does).

.venv/bin/python -m bench.decisions_ingest --reuse URL [--decisions 12000] [--runs 3] [--http]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from bench.decisions_bench import _uuid, machine_speed, request_body  # noqa: E402
from bench.view_bench import AUTH, Server  # noqa: E402
from relata.config import Settings  # noqa: E402
from relata.db import Database  # noqa: E402
from relata.decisions import service  # noqa: E402
from relata.decisions.engine import Engine  # noqa: E402
from relata.decisions.schemas import DecisionRequest, ResponseItem  # noqa: E402
from relata.writer import Writer  # noqa: E402

BATCH = 1000
UNCLICKED = text(
    "SELECT id, offers FROM decisions d WHERE NOT EXISTS (SELECT 1 FROM decision_responses r "
    "WHERE r.decision_id = d.id AND r.kind = 'click') ORDER BY created_at DESC LIMIT :n"
)


def make_decisions(url: str, n: int, customers: int) -> None:
    settings = Settings(database_url=url, decision_fold_seconds=0, decision_sync_seconds=3600)
    db, rng = Database(url), random.Random(time.time_ns())
    engine, writer = Engine(settings, seed=1), Writer(db)
    started, pending = time.perf_counter(), []
    for _ in range(n):
        body = DecisionRequest.model_validate(request_body(rng, rng.randint(1, customers)))
        with db.session(write=False) as s:
            decided = service.make(s, engine, settings, body, writer=writer)
        assert decided.log is not None
        pending.append(writer.submit(decided.log))
        if len(pending) >= 200:
            for f in pending:
                f.result()
            pending = []
    for f in pending:
        f.result()
    writer.stop()
    db.dispose()
    print(f"{n:,} decisions made in {time.perf_counter() - started:.1f} s", flush=True)


def clicks(url: str, decisions: int) -> list[dict]:
    db = Database(url)
    with db.session(write=False) as s:
        rows = s.execute(UNCLICKED, {"n": decisions}).all()
    db.dispose()
    return [
        {"decision_id": str(_uuid(did)), "offer": o["offer_id"], "type": "click"}
        for did, offered in rows
        for o in (offered if isinstance(offered, list) else json.loads(offered))
        if not o.get("nothing")
    ]


def in_process(url: str, items: list[dict]) -> float:
    db, settings = Database(url), Settings(database_url=url)
    parsed = [ResponseItem(**i) for i in items]
    took = 0.0
    for i in range(0, len(parsed), BATCH):
        started = time.perf_counter()
        with db.session() as s:
            service.record_responses(s, settings, parsed[i : i + BATCH])
        took += time.perf_counter() - started
    db.dispose()
    return len(items) / took


def over_http(url: str, items: list[dict]) -> float:
    bodies = [
        json.dumps({"responses": items[i : i + BATCH]}).encode()
        for i in range(0, len(items), BATCH)
    ]
    with Server(url, workers=1) as server:
        conn = server.connection()
        started = time.perf_counter()
        for body in bodies:
            headers = {"content-type": "application/json", **AUTH}
            conn.request("POST", "/v1/decision-responses", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 201:
                raise RuntimeError(f"responses refused: {response.status}")
        return len(items) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reuse", required=True, help="a database URL built by decisions_bench")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--decisions", type=int, default=12_000, help="made first, 3 offers each")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--http", action="store_true", help="the last run over HTTP")
    args = parser.parse_args()
    machine_speed()
    make_decisions(args.reuse, args.decisions, args.customers)
    per_run = args.decisions // args.runs
    rates = []
    for run in range(args.runs):
        items = clicks(args.reuse, per_run)
        if args.http and run == args.runs - 1:
            rate = over_http(args.reuse, items)
            print(f"POST /v1/decision-responses, 1 process: {len(items):,} at {rate:,.0f}/s")
        else:
            rates.append(rate := in_process(args.reuse, items))
            print(f"service.record_responses: {len(items):,} at {rate:,.0f}/s", flush=True)
    if rates:
        print(f"in process, median of {len(rates)}: {statistics.median(rates):,.0f}/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
