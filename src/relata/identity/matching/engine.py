"""Splink, the matching engine: the model's settings, training and batch prediction.

Takes and gives plain tables (a pyarrow table of feature rows in, customer pairs out),
never a database session. The backend is a setting: DuckDB in memory on one machine
(no extensions, nothing downloaded), or Spark on a cluster, where the same settings run
as Spark SQL (`RELATA_MATCH_BACKEND=spark`, needs `pyspark` and a Spark session).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from relata.identity.matching.comparisons import (
    COMPARISONS,
    Comparison,
    spec_hash,
)
from relata.identity.matching.features import BLOCKING_KEYS, BOOL_COLUMNS, LIST_COLUMNS
from relata.identity.matching.scoring import LevelParams, Params

Step = Callable[[str], None]  # reports the start of a step, for a progress display


class EngineError(RuntimeError):
    """Matching cannot run: no backend, or too little data to train on."""


# Blocking: two rows are compared when one of these keys is equal and they belong to
# different customers (rows of one customer are its golden record and source records).
def blocking_rules() -> list[Any]:
    from splink import block_on
    from splink.blocking_rule_library import And, CustomRule

    other = CustomRule("l.customer_id <> r.customer_id")
    return [And(block_on(key), other) for key in BLOCKING_KEYS]


# The records whose pairs train m by expectation maximisation: once blocked on the birth
# date (trains all but the birth date), once on both names' sounds (all but the names).
_EM_RULES = (
    "l.dob = r.dob and l.customer_id <> r.customer_id",
    "l.forename_ph = r.forename_ph and l.surname_ph = r.surname_ph "
    "and l.customer_id <> r.customer_id",
)
# Pairs that are almost surely the same person: how often they occur sets the prior.
_DETERMINISTIC = (
    "l.forename = r.forename and l.surname = r.surname and l.dob = r.dob",
    "l.email = r.email and l.forename = r.forename",
)
_DETERMINISTIC_RECALL = 0.6
_EM_MAX_PAIRS = 3_000_000


def settings(comparisons: Sequence[Comparison] = COMPARISONS) -> Any:
    from splink import SettingsCreator
    from splink import comparison_level_library as cll
    from splink import comparison_library as cl

    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="row_id",
        comparisons=[c.splink(cll, cl) for c in comparisons],
        blocking_rules_to_generate_predictions=blocking_rules(),
        additional_columns_to_retain=["customer_id"],
        retain_matching_columns=False,
        # The mw_ columns: each comparison's weight, which names its level (conflict test).
        retain_intermediate_calculation_columns=True,
    )


def db_api(backend: str) -> Any:
    if backend == "duckdb":
        from splink import DuckDBAPI

        return DuckDBAPI()
    if backend == "spark":
        try:
            from pyspark.sql import SparkSession
            from splink.backends.spark import SparkAPI
        except ImportError as exc:
            raise EngineError(
                "the spark backend needs pyspark: pip install 'pyspark>=3.5'"
            ) from exc
        return SparkAPI(spark_session=SparkSession.builder.getOrCreate())
    raise EngineError(f"unknown matching backend {backend!r}; use duckdb or spark")


def arrow_table(columns: dict[str, list[Any]]) -> pa.Table:
    """Feature columns (as `rows.Rows` holds them) as the table Splink reads."""
    arrays = {}
    for name, values in columns.items():
        if name in LIST_COLUMNS:
            arrays[name] = pa.array([v or None for v in values], pa.list_(pa.string()))
        elif name in BOOL_COLUMNS:
            arrays[name] = pa.array(values, pa.bool_())
        elif name in ("row_id", "customer_id"):
            arrays[name] = pa.array(values, pa.int64())
        else:
            arrays[name] = pa.array(values, pa.string())
    return pa.table(arrays)


def _register(api: Any, table: pa.Table, backend: str) -> Any:
    if backend == "spark":  # Spark reads pandas; DuckDB reads Arrow without a copy
        return api.register(table.to_pandas())
    return api.register(table)


def _linker(api: Any, table: pa.Table, model: Any, backend: str) -> Any:
    from splink import Linker

    # log_level=None: Splink's INFO lines would interleave with our progress display.
    return Linker(_register(api, table, backend), model, log_level=None)


@dataclass
class Trained:
    splink: dict[str, Any]
    params: Params
    stats: dict[str, Any] = field(default_factory=dict)


def train(
    table: pa.Table,
    backend: str = "duckdb",
    u_max_pairs: float = 5e6,
    seed: int = 42,
    step: Step | None = None,
) -> Trained:
    """u by random sampling, m by expectation maximisation, the prior from sure pairs."""
    step = step or (lambda _: None)
    if table.num_rows < 10:
        raise EngineError(f"too few records to train on ({table.num_rows}); import more first")
    # Splink warns of every level the data never showed; stats["untrained_levels"] says it.
    logging.getLogger("splink").setLevel(logging.ERROR)
    timings: dict[str, float] = {}
    api = db_api(backend)
    linker = _linker(api, table, settings(), backend)
    started = time.perf_counter()
    step("estimating the prior")
    # No sure pairs, or too many for the recall: keep Splink's default prior.
    with contextlib.suppress(ValueError):
        linker.training.estimate_probability_two_random_records_match(
            list(_DETERMINISTIC), recall=_DETERMINISTIC_RECALL
        )
    timings["prior"] = time.perf_counter() - started
    step("estimating u by random sampling")
    started = time.perf_counter()
    linker.training.estimate_u_using_random_sampling(max_pairs=u_max_pairs, seed=seed)
    timings["u"] = time.perf_counter() - started
    failed = []
    good = linker.misc.save_model_to_json()
    for n, rule in enumerate(_EM_RULES, start=1):
        step(f"estimating m by expectation maximisation ({n}/{len(_EM_RULES)})")
        started = time.perf_counter()
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(
                rule, max_pairs=_EM_MAX_PAIRS
            )
            good = linker.misc.save_model_to_json()
        except ValueError as exc:
            # Splink refuses an m that underflows (a level EM drove to zero) and leaves the
            # linker half-changed: go on from the last good model; the stats say so.
            failed.append(f"em{n}: {exc}")
            linker = _linker(db_api(backend), table, copy.deepcopy(good), backend)
        timings[f"em{n}"] = time.perf_counter() - started
    if len(failed) == len(_EM_RULES):
        raise EngineError("expectation maximisation failed: " + "; ".join(failed))
    model, untrained = neutralise_untrained(good)
    step("computing term frequencies")
    tf = term_frequencies(table)
    params = extract_params(_linker(db_api(backend), table.slice(0, 1), model, backend), tf)
    stats = {
        "rows": table.num_rows,
        "seconds": timings,
        "untrained_levels": untrained,
        "em_failed": failed,
    }
    return Trained(model, params, stats)


MIN_M = 0.001


def neutralise_untrained(model: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Levels the data never showed (no m or no u) and levels the spec marks neutral weigh
    nothing, in both engines; and no m is below `MIN_M`, so one comparison weighs at most
    about -10 against a match.

    Splink would give them its default probabilities, an arbitrary weight of up to ±10
    for evidence the model has never seen; neutral is the honest weight.
    """
    untrained = []
    for spec, comparison in zip(COMPARISONS, model["comparisons"], strict=True):
        for level_spec, level in zip(spec.levels, comparison["comparison_levels"], strict=True):
            if level.get("is_null_level"):
                continue
            if level_spec.neutral:
                known = level.get("u_probability") or level.get("m_probability") or 0.5
                level["m_probability"] = level["u_probability"] = known
                continue
            m, u = level.get("m_probability"), level.get("u_probability")
            if isinstance(m, float | int) and isinstance(u, float | int) and m > 0 and u > 0:
                # EM can drive a level's m to nearly zero on data that never showed it
                # among matches (weights of -150); no single difference is that certain.
                level["m_probability"] = max(m, MIN_M)
                continue
            known = next((p for p in (u, m) if isinstance(p, float | int) and p > 0), 0.5)
            level["m_probability"] = level["u_probability"] = known
            untrained.append(f"{comparison['output_column_name']}: {level['label_for_charts']}")
    return model, untrained


def term_frequencies(table: pa.Table) -> dict[str, dict[str, float]]:
    """Relative frequency of every value of the term-frequency columns (Splink's formula:
    count of the value over count of non-null values)."""
    import pyarrow.compute as pc

    result: dict[str, dict[str, float]] = {}
    for col in _tf_columns():
        counts = pc.value_counts(table.column(col).drop_null())
        total = sum(c.as_py() for c in counts.field("counts")) or 1
        result[col] = {
            v.as_py(): c.as_py() / total
            for v, c in zip(counts.field("values"), counts.field("counts"), strict=True)
        }
    return result


def _tf_columns() -> list[str]:
    return sorted({lv.tf for c in COMPARISONS for lv in c.levels if lv.tf})


def extract_params(linker: Any, tf: dict[str, dict[str, float]]) -> Params:
    """The trained match weights, per comparison level, as the Python scorer needs them."""
    settings_obj = linker._settings_obj
    prior = settings_obj._probability_two_random_records_match
    by_name = {c.output_column_name: c for c in settings_obj.comparisons}
    levels = []
    for comparison in COMPARISONS:
        trained = by_name[comparison.name]
        ordered = trained.comparison_levels
        found = []
        for level in ordered:
            if level.is_null_level:
                found.append(LevelParams(level.label_for_charts, 0.0))
                continue
            weight = level._match_weight
            tf_col = level._tf_adjustment_input_column_name if level._has_tf_adjustments else None
            found.append(
                LevelParams(
                    label=level.label_for_charts,
                    weight=float(weight) if weight is not None else 0.0,
                    m=level.m_probability,
                    u=level.u_probability,
                    tf=tf_col,
                    tf_u=level._u_probability_corresponding_to_exact_match(ordered)
                    if tf_col
                    else None,
                    tf_weight=float(level._tf_adjustment_weight) if tf_col else 1.0,
                    tf_min_u=float(level._tf_minimum_u_value) if tf_col else 0.0,
                )
            )
        levels.append(tuple(found))
    return Params(spec_hash(), math.log2(prior / (1 - prior)), tuple(levels), tf)


@dataclass
class Predicted:
    """The best-scoring row pair of every pair of customers at or above the floor."""

    compared: int  # row pairs the blocking rules produced and the model scored
    # customer a < b, best weight, row of a, row of b, any pair of their rows in conflict
    pairs: list[tuple[int, int, float, int, int, bool]]
    seconds: dict[str, float]


def predict(
    table: pa.Table,
    model: dict[str, Any],
    params: Params,
    floor: float,
    backend: str = "duckdb",
    step: Step | None = None,
) -> Predicted:
    step = step or (lambda _: None)
    logging.getLogger("splink").setLevel(logging.ERROR)
    api = db_api(backend)
    linker = _linker(api, table, model, backend)
    seconds: dict[str, float] = {}
    step("blocking")
    started = time.perf_counter()
    blocked = linker.inference.compute_blocked_pairs_for_predict()
    compared = _count(linker, blocked.physical_name)
    linker.table_management.register_blocked_pairs_for_predict(blocked)
    seconds["blocking"] = time.perf_counter() - started
    step("scoring pairs")
    started = time.perf_counter()
    scored = linker.inference.predict(threshold_match_weight=floor, warning_mode="never")
    seconds["scoring"] = time.perf_counter() - started
    started = time.perf_counter()
    # One pair of customers, one row: the best of their records' pairs.
    sql = f"""
        select least(customer_id_l, customer_id_r) as a,
               greatest(customer_id_l, customer_id_r) as b,
               max(match_weight) as weight,
               max_by(case when customer_id_l < customer_id_r then row_id_l else row_id_r end,
                       match_weight) as row_a,
               max_by(case when customer_id_l < customer_id_r then row_id_r else row_id_l end,
                       match_weight) as row_b,
               bool_or({params.conflict_sql()}) as conflict
        from {scored.physical_name}
        group by 1, 2
        order by 3 desc, 1, 2
    """
    found = _records(linker.misc.query_sql(sql, output_type="splink_df"))
    pairs = [
        (int(r["a"]), int(r["b"]), float(r["weight"]), int(r["row_a"]), int(r["row_b"]),
         bool(r["conflict"]))
        for r in found
    ]  # fmt: skip
    seconds["aggregating"] = time.perf_counter() - started
    return Predicted(compared, pairs, seconds)


def _count(linker: Any, table_name: str) -> int:
    sql = f"select count(*) as n from {table_name}"
    return int(_records(linker.misc.query_sql(sql, output_type="splink_df"))[0]["n"])


def _records(sdf: Any) -> list[dict[str, Any]]:
    """Rows of a Splink table as dicts: through Arrow on DuckDB (pandas is not a
    dependency of relata), through pandas on Spark (which needs it anyway)."""
    if hasattr(sdf, "as_pyarrow_table"):
        return sdf.as_pyarrow_table().to_pylist()
    return sdf.as_pandas_dataframe().to_dict("records")
