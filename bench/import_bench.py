"""Bulk import throughput: a German CSV of N rows into SQLite and PostgreSQL.

.venv/bin/python bench/import_bench.py --rows 1000000 [--postgres URL] [--only sqlite]
.venv/bin/python bench/import_bench.py --rows 200000 --read-only

``--read-only`` times what an import does before it stores anything (read, decode,
map, normalise, fingerprint) in this one process: the work the reader process takes
off the writer.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

from bench.synth import write_csv
from relata.config import Settings
from relata.db import Database
from relata.ingest.mapping import guess_mapping
from relata.ingest.readers import headers, read_file
from relata.ingest.service import _batches, convert_batch, import_file
from relata.ingest.sources import add_source

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def run(url: str, csv_path: Path, label: str) -> None:
    db = Database(url)
    db.migrate()
    with db.session() as s:
        add_source(s, "shop", "shop", 80)
    settings = Settings(database_url=url)
    started = time.perf_counter()
    summary = import_file(db, csv_path, "shop", settings)
    first = time.perf_counter() - started
    started = time.perf_counter()
    again = import_file(db, csv_path, "shop", settings)
    second = time.perf_counter() - started
    rows = summary.new + summary.quarantined
    print(
        f"{label:<10} rows={rows:,} first import {first:7.1f} s = {rows / first:8,.0f} rows/s "
        f"(new {summary.new:,}, merged {summary.merged:,}, quarantined {summary.quarantined:,}); "
        f"re-import {second:6.1f} s = {rows / second:8,.0f} rows/s (unchanged {again.unchanged:,})"
    )
    db.dispose()


def read_only(csv_path: Path, rows: int) -> None:
    settings = Settings()
    mapping = guess_mapping(headers(csv_path))
    started, cpu = time.perf_counter(), time.process_time()
    for batch in _batches(read_file(csv_path), settings.import_batch_size):
        convert_batch(mapping, batch, settings.default_region)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    # CPU time too: on a shared machine it is the steadier figure.
    print(
        f"read + normalise only: {rows:,} rows in {elapsed:.1f} s = {rows / elapsed:,.0f} rows/s; "
        f"{cpu / rows * 1e6:.1f} µs of CPU a row (one process)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", default=PG)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--read-only", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = write_csv(Path(tmp) / "kunden.csv", args.rows)
        print(f"{csv_path.stat().st_size / 1e6:.0f} MB CSV (cp1252, ';'), {args.rows:,} rows")
        if args.read_only:
            read_only(csv_path, args.rows)
            return
        if args.only != "postgresql":
            run(f"sqlite:///{tmp}/bench.db", csv_path, "sqlite")
        if args.only != "sqlite":
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(args.postgres)
            with admin.begin() as conn:
                conn.execute(text(f"CREATE SCHEMA {schema}"))
            try:
                run(f"{args.postgres}?options=-csearch_path%3D{schema}", csv_path, "postgresql")
            finally:
                with admin.begin() as conn:
                    conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
                admin.dispose()


if __name__ == "__main__":
    main()
