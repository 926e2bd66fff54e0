"""Pairwise precision, recall and F1 of `relata export links` against a ground truth.

.venv/bin/python bench/linkage_quality.py links.csv demo-data/truth.csv
"""

from __future__ import annotations

import csv
import sys
from collections import Counter, defaultdict
from pathlib import Path


def _pairs(sizes: Counter) -> int:
    return sum(n * (n - 1) // 2 for n in sizes.values())


def scores(links: Path, truth: Path) -> dict[str, float]:
    with links.open(newline="", encoding="utf-8") as fh:
        predicted = {(r["source"], r["source_key"]): r["customer_id"] for r in csv.DictReader(fh)}
    with truth.open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("valid", "1") != "0"]
    true_of = {(r["source"], r["source_key"]): r["person_id"] for r in rows}
    keys = [k for k in true_of if k in predicted]
    by_both = Counter((predicted[k], true_of[k]) for k in keys)
    tp = _pairs(by_both)
    predicted_pairs = _pairs(Counter(predicted[k] for k in keys))
    true_pairs = _pairs(Counter(true_of[k] for k in keys))
    precision = tp / predicted_pairs if predicted_pairs else 1.0
    recall = tp / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    clusters = defaultdict(set)
    for k in keys:
        clusters[predicted[k]].add(true_of[k])
    return {
        "records": len(keys),
        "missing": len(true_of) - len(keys),
        "true_pairs": true_pairs,
        "predicted_pairs": predicted_pairs,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "customers": len(clusters),
        "persons": len(set(true_of[k] for k in keys)),
    }


if __name__ == "__main__":
    result = scores(Path(sys.argv[1]), Path(sys.argv[2]))
    print(
        "  ".join(
            f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v:,}" for k, v in result.items()
        )
    )
