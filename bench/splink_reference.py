"""The reference for `dedupe_bench.py`: a plain Splink script on the same records.

Reads every source record relata holds (its normalised fields, straight from the
database file), deduplicates them the way Splink's documentation does it (library
comparisons, term frequencies on names and city, u by random sampling, m by EM on two
blocking rules), clusters at the same match weight as relata's auto-merge threshold and
scores the clusters against the truth. No relata code is used for the matching.

.venv/bin/python -m bench.splink_reference DB_FILE TRUTH_CSV [--threshold 6] [--u-pairs 5e6]
"""

from __future__ import annotations

import argparse
import json
import logging
import sqlite3
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd

COLUMNS = (
    "first_name",
    "last_name",
    "birth_date",
    "email",
    "phone",
    "street",
    "house_number",
    "postcode",
    "city",
)


def read_records(db_file: Path) -> pd.DataFrame:
    con = sqlite3.connect(db_file)
    rows = con.execute(
        "select s.name, r.source_key, r.data from source_records r "
        "join sources s on s.id = r.source_id order by r.id"
    ).fetchall()
    con.close()
    records = []
    for i, (source, key, data) in enumerate(rows):
        fields = json.loads(data)
        record = {"unique_id": i, "source": source, "source_key": key}
        for c in COLUMNS:
            value = fields.get(c)
            record[c] = value.lower() if isinstance(value, str) else None
        records.append(record)
    return pd.DataFrame.from_records(records)


def pairwise(found: pd.DataFrame, truth_csv: Path) -> dict[str, float]:
    truth = pd.read_csv(truth_csv, dtype=str)
    truth = truth[truth["valid"] != "0"]
    merged = found.merge(truth, on=["source", "source_key"])

    def pairs(counts: Counter) -> int:
        return sum(n * (n - 1) // 2 for n in counts.values())

    tp = pairs(Counter(zip(merged["cluster_id"], merged["person_id"], strict=True)))
    predicted = pairs(Counter(merged["cluster_id"]))
    true = pairs(Counter(merged["person_id"]))
    precision = tp / predicted if predicted else 1.0
    recall = tp / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "records": len(merged)}


def run(df: pd.DataFrame, threshold: float, u_pairs: float) -> tuple[pd.DataFrame, dict]:
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    settings = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[
            cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("last_name").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("birth_date", input_is_string=True),
            cl.EmailComparison("email"),
            cl.ExactMatch("phone"),
            cl.LevenshteinAtThresholds("street", 2),
            cl.ExactMatch("house_number"),
            cl.ExactMatch("postcode"),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("first_name", "last_name"),
            block_on("last_name", "birth_date"),
            block_on("first_name", "birth_date"),
            block_on("postcode", "street"),
            block_on("email"),
            block_on("phone"),
        ],
        additional_columns_to_retain=["source", "source_key"],
    )
    seconds = {}
    started = time.perf_counter()
    linker = Linker(DuckDBAPI().register(df), settings, log_level=logging.ERROR)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("first_name", "last_name", "birth_date")], recall=0.6
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=u_pairs, seed=42)
    for rule in (block_on("birth_date"), block_on("first_name", "last_name")):
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    seconds["train"] = time.perf_counter() - started
    started = time.perf_counter()
    predictions = linker.inference.predict(threshold_match_weight=threshold)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=2**threshold / (1 + 2**threshold)
    )
    found = clusters.as_pandas_dataframe()[["cluster_id", "source", "source_key"]]
    seconds["predict_and_cluster"] = time.perf_counter() - started
    return found, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("db", type=Path)
    parser.add_argument("truth", type=Path)
    parser.add_argument("--threshold", type=float, default=6.0, help="match weight to cluster at")
    parser.add_argument("--u-pairs", type=float, default=5e6)
    args = parser.parse_args()
    started = time.perf_counter()
    df = read_records(args.db)
    read = time.perf_counter() - started
    found, seconds = run(df, args.threshold, args.u_pairs)
    result = {
        "records": len(df),
        "seconds": {"read": read, **seconds, "total": time.perf_counter() - started},
        **pairwise(found, args.truth),
    }
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
