"""Run every benchmark in bench/ one after the other and print their figures.

This is what `make bench` calls. Each benchmark runs as `python -m bench.<name>` from
the repository root, so this file works as a script (`python bench/run_all.py`) too.

.venv/bin/python bench/run_all.py [--rows 200000] [--only sqlite|postgresql]
    [--postgres URL] [--skip import view events]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the import benchmark")
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--postgres", default=PG)
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["import", "view", "events", "decisions", "simulation"],
        help="leave out",
    )
    args = parser.parse_args()
    common = ["--postgres", args.postgres] + (["--only", args.only] if args.only else [])
    benches = [
        ("import", ["bench.import_bench", "--rows", str(args.rows)]),
        ("view", ["bench.view_bench"]),
        ("events", ["bench.events_bench"]),
        ("decisions", ["bench.decisions_bench", "--customers", "200000", "--seconds", "10"]),
    ]
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = "?"
    print(f"relata benchmarks at {commit or '?'}, Python {sys.version.split()[0]}", flush=True)
    failed = []
    for name, module in benches:
        if name in args.skip:
            continue
        cmd = [sys.executable, "-m", *module, *common]
        print(f"\n### {name}: {' '.join(cmd[1:])}", flush=True)
        started = time.perf_counter()
        code = subprocess.call(cmd, cwd=ROOT)
        print(
            f"### {name}: {'ok' if code == 0 else f'FAILED ({code})'} in "
            f"{time.perf_counter() - started:.0f} s",
            flush=True,
        )
        if code:
            failed.append(name)
    if "simulation" not in args.skip:
        # One policy world, no database: not run per database.
        print("\n### simulation: bench.decisions_sim", flush=True)
        if subprocess.call([sys.executable, "-m", "bench.decisions_sim"], cwd=ROOT):
            failed.append("simulation")
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
