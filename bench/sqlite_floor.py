"""What SQLite alone costs for the rows an import writes: the ceiling of import_bench.

First imports a synthetic CSV for real (``import_file``), then replays exactly the rows
that import wrote (customers, source records, identifiers) into a fresh, migrated
database with the same pragmas, in batches of ``--batch`` input rows, each batch one
transaction with the two lookups an import makes (records by key, identifiers by
value). No normalising, no linking, no Python beyond handing the driver ready tuples:
whatever rows/s this prints, an import with this schema cannot exceed on this machine.

.venv/bin/python -m bench.sqlite_floor --rows 200000 [--foreign-keys off]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench.synth import write_csv
from relata.config import Settings
from relata.db import Database
from relata.ingest.service import import_file
from relata.ingest.sources import add_source

TABLES = ("customers", "source_records", "identifiers")
CHUNK = 500


def _fresh(path: Path) -> None:
    db = Database(f"sqlite:///{path}")
    db.migrate()
    with db.session() as s:
        add_source(s, "shop", "shop", 80)
    db.dispose()


def _rows(path: Path) -> dict[str, tuple[list[str], list[tuple]]]:
    con = sqlite3.connect(path)
    found = {}
    for table in TABLES:
        cur = con.execute(f"SELECT * FROM {table} ORDER BY id")
        found[table] = ([d[0] for d in cur.description], cur.fetchall())
    con.close()
    return found


def _lookups(con: sqlite3.Connection, keys: list[str], values: dict[str, list[str]]) -> None:
    for i in range(0, len(keys), CHUNK):
        chunk = keys[i : i + CHUNK]
        marks = ",".join("?" * len(chunk))
        con.execute(
            "SELECT id, source_key, customer_id, origin_customer_id, content_hash "
            f"FROM source_records WHERE source_id = 1 AND source_key IN ({marks})",
            chunk,
        ).fetchall()
    for kind, vals in values.items():
        for i in range(0, len(vals), CHUNK):
            chunk = vals[i : i + CHUNK]
            marks = ",".join("?" * len(chunk))
            con.execute(
                "SELECT DISTINCT value, customer_id FROM identifiers "
                f"WHERE kind = ? AND value IN ({marks})",
                [kind, *chunk],
            ).fetchall()


def replay(
    rows: dict[str, tuple[list[str], list[tuple]]], path: Path, batch: int, fk: str
) -> float:
    _fresh(path)
    con = sqlite3.connect(path, isolation_level=None)
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        f"foreign_keys={fk}",
        "cache_size=-262144",
        "mmap_size=1073741824",
    ):
        con.execute(f"PRAGMA {pragma}")
    (c_cols, customers), (r_cols, records), (i_cols, identifiers) = (rows[t] for t in TABLES)
    customer = {row[0]: row for row in customers}
    by_record = defaultdict(list)
    record_at = i_cols.index("source_record_id")
    for row in identifiers:
        by_record[row[record_at]].append(row)
    key_at, cid_at = r_cols.index("source_key"), r_cols.index("customer_id")
    kind_at, value_at = i_cols.index("kind"), i_cols.index("value")

    def insert(table: str, cols: list[str], values: list[tuple]) -> None:
        marks = ",".join("?" * len(cols))
        con.executemany(f"INSERT INTO {table} ({','.join(cols)}) VALUES ({marks})", values)

    written: set[int] = set()
    started = time.perf_counter()
    for i in range(0, len(records), batch):
        chunk = records[i : i + batch]
        ids = [row for rec in chunk for row in by_record.get(rec[0], ())]
        values: dict[str, set[str]] = defaultdict(set)
        for row in ids:
            values[row[kind_at]].add(row[value_at])
        con.execute("BEGIN IMMEDIATE")
        _lookups(con, [r[key_at] for r in chunk], {k: sorted(v) for k, v in values.items()})
        new = sorted({r[cid_at] for r in chunk} - written)
        written.update(new)
        insert("customers", c_cols, [customer[c] for c in new if c in customer])
        insert("source_records", r_cols, chunk)
        insert("identifiers", i_cols, ids)
        con.execute("COMMIT")
    elapsed = time.perf_counter() - started
    con.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--foreign-keys", choices=["on", "off"], default="on")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = write_csv(Path(tmp) / "kunden.csv", args.rows)
        source = Path(tmp) / "imported.db"
        _fresh(source)
        import_file(Database(f"sqlite:///{source}"), csv_path, "shop", Settings())
        rows = _rows(source)
        n = len(rows["source_records"][1])
        runs = []
        for r in range(args.repeat):
            runs.append(replay(rows, Path(tmp) / f"floor{r}.db", args.batch, args.foreign_keys))
        best = statistics.median(runs)
        print(
            f"sqlite floor (foreign keys {args.foreign_keys}, batch {args.batch}): "
            f"{n:,} rows, {len(rows['identifiers'][1]):,} identifiers, "
            f"{len(rows['customers'][1]):,} customers; median {best:.1f} s = "
            f"{n / best:,.0f} rows/s ({best / n * 1e6:.1f} µs a row); "
            f"runs {', '.join(f'{x:.1f}' for x in runs)} s"
        )


if __name__ == "__main__":
    main()
