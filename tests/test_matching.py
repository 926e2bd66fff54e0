"""Matching's pure parts: German features, the two engines agreeing, scoring, clustering."""

from __future__ import annotations

import math
import random
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relata.identity.matching import engine, rows
from relata.identity.matching.clustering import Pair, cluster
from relata.identity.matching.comparisons import COMPARISONS, spec_hash
from relata.identity.matching.features import COLUMNS, Features, features, keys_of
from relata.identity.matching.scoring import (
    LevelParams,
    ModelMismatch,
    Params,
    explain,
    score,
    total,
)
from tests.matching_helpers import records, trained

# --- features --------------------------------------------------------------------------------


def test_german_spellings_of_one_name_meet() -> None:
    a = features({"first_name": "Jürgen", "last_name": "Müller"})
    b = features({"first_name": "Juergen", "last_name": "MUELLER"})
    c = features({"first_name": "Jurgen", "last_name": "Muller"})
    assert a.forename == b.forename == "juergen" and c.forename == "jurgen"
    assert a.forename_sk == b.forename_sk == c.forename_sk
    assert a.surname_sk == c.surname_sk
    assert a.k_name == b.k_name == c.k_name  # the same block: they are compared


def test_street_spellings_and_house_number_suffixes() -> None:
    forms = ["Hauptstraße", "Hauptstr.", "Hauptstrasse", "Haupt-Straße", "hauptstr"]
    keys = {features({"street": s}).street for s in forms}
    assert keys == {"hauptstr"}
    f = features({"street": "Hauptstr.", "house_number": "5 A", "postcode": "10115"})
    assert (f.hnr, f.hnr_base, f.k_addr) == ("5a", "5", "10115|hauptstr|5")


def test_swapped_names_share_the_name_block_and_dates_know_their_swap() -> None:
    a = features({"first_name": "Jürgen", "last_name": "Müller", "birth_date": "1970-03-07"})
    b = features({"first_name": "Müller", "last_name": "Jürgen", "birth_date": "1970-07-03"})
    assert a.k_name == b.k_name
    assert a.dob_swapped == b.dob and b.dob_swapped == a.dob
    assert features({"birth_date": "1970-03-13"}).dob_swapped is None  # no 13th month
    assert features({"birth_date": "1970-05-05"}).dob_swapped is None


def test_household_addresses_mobile_numbers_double_names_and_nicknames() -> None:
    f = features({"email": "Familie.Mueller@web.de", "phone": "+4917112345678"})
    assert f.email_household and f.phone_mobile and f.email_local == "familiemueller"
    assert not features({"email": "anna.mueller@web.de", "phone": "+49301234567"}).phone_mobile
    double = features({"first_name": "Anna-Maria", "last_name": "Müller-Lüdenscheidt"})
    assert double.forename_tokens == ("anna", "maria")
    assert double.surname_tokens == ("luedenscheidt", "mueller")
    assert "alexander" in features({"first_name": "Alex"}).forename_alias


_text = st.one_of(st.none(), st.text(max_size=30))


@given(
    st.fixed_dictionaries(
        {
            f: _text
            for f in (
                "first_name",
                "last_name",
                "email",
                "phone",
                "street",
                "house_number",
                "postcode",
                "city",
                "gender",
            )
        }
    )
)
def test_features_take_any_text_and_swapping_names_keeps_the_name_key(data: dict) -> None:
    f = features(data)
    swapped = features({**data, "first_name": data["last_name"], "last_name": data["first_name"]})
    assert f.k_name == swapped.k_name
    assert all(key.startswith("k_") for key in keys_of(f))
    assert len(f) == len(COLUMNS)


# --- the two engines agree -------------------------------------------------------------------

_POOLS: dict[str, list[Any]] = {
    "first_name": [
        "Jürgen", "Juergen", "Jurgen", "Anna Maria", "Anna", "Hanna", "Alex", "Alexander",
        "Stefanie", "Steffi", "Thomas", "Tom", "Müller", "Meier", "Martina", "Martinas",
        "Marco", "Marcel", None,
    ],
    "last_name": [
        "Müller", "Mueller", "Muller", "Meier", "Mayer", "Müller-Lüdenscheidt", "Schmidt",
        "Schmitt", "Jürgen", "Anna", "Martina", "Martinas", "Marco", "Marcel", None,
    ],
    "birth_date": ["1970-03-07", "1970-07-03", "1970-03-08", "1971-03-07", "1990-12-24", None],
    "gender": ["m", "f", None],
    "email": [
        "anna.mueller@web.de", "anna.mueller@gmx.de", "annamueller@web.de", "anna.mueler@web.de",
        "familie.mueller@web.de", "tom@t-online.de", None,
    ],
    "phone": ["+4917112345678", "+49301234567", "+4917199999999", None],
    "street": ["Hauptstraße", "Hauptstr.", "Haupstraße", "Bahnhofstraße", None],
    "house_number": ["5", "5a", "7", None],
    "postcode": ["10115", "10117", "80331", None],
    "city": ["Berlin", "Berlinn", "München", "Muenchen", None],
}  # fmt: skip
_record = st.fixed_dictionaries({k: st.sampled_from(v) for k, v in _POOLS.items()})


def _splink_levels(pairs: list[tuple[Features, Features]]) -> list[tuple[list[int], float]]:
    """Each pair compared by Splink (DuckDB): its level per comparison and match weight."""
    from splink import DuckDBAPI
    from splink.internals.realtime import compare_records

    def table(side: int) -> pa.Table:
        cols = {c: [p[side][i] for p in pairs] for i, c in enumerate(COLUMNS)}
        cols = {"row_id": list(range(len(pairs))), "customer_id": [side] * len(pairs), **cols}
        t = engine.arrow_table(cols)
        for col in ("forename", "surname", "city"):  # no term frequencies: no adjustment
            t = t.append_column(f"tf_{col}", pa.nulls(len(pairs), pa.float64()))
        return t.append_column("pair", pa.array(range(len(pairs)), pa.int64()))

    model = trained().splink
    result = compare_records(
        table(0), table(1), model, DuckDBAPI(), join_condition="l.pair = r.pair"
    ).as_pandas_dataframe()
    result = result.sort_values("row_id_l")
    found = []
    for _, row in result.iterrows():
        levels = []
        for c in COMPARISONS:
            gamma = int(row[f"gamma_{c.name}"])
            levels.append(0 if gamma == -1 else len(c.levels) - 1 - gamma)
        found.append((levels, float(row["match_weight"])))
    return found


def _without_tf(params: Params) -> Params:
    return Params(params.spec_hash, params.prior_weight, params.levels, {})


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_record, _record), min_size=1, max_size=40))
def test_python_and_splink_put_every_pair_in_the_same_level_with_the_same_weight(
    pairs: list[tuple[dict, dict]],
) -> None:
    # Without term-frequency columns Splink adjusts nothing; so must Python.
    params = _without_tf(trained().params)
    feats = [(features(a), features(b)) for a, b in pairs]
    for (levels, weight), (fa, fb) in zip(_splink_levels(feats), feats, strict=True):
        s = score(fa, fb, params)
        assert list(s.levels) == levels
        assert s.weight == pytest.approx(weight, abs=1e-9)


def test_every_level_of_every_comparison_is_reached_by_the_pools() -> None:
    """So the property test above exercises every level, not just the easy ones."""
    rng = random.Random(3)
    reached: set[tuple[int, int]] = set()
    for _ in range(20_000):
        a = features({k: rng.choice(v) for k, v in _POOLS.items()})
        b = features({k: rng.choice(v) for k, v in _POOLS.items()})
        for i, c in enumerate(COMPARISONS):
            reached.add((i, c.level_of(a, b)))
    missing = [
        (c.name, c.levels[j].label)
        for i, c in enumerate(COMPARISONS)
        for j in range(len(c.levels))
        if (i, j) not in reached
    ]
    assert missing == []


def test_python_score_equals_splink_prediction_with_term_frequencies() -> None:
    model = trained()
    built = rows.build((i, data) for i, (_, data) in enumerate(records(300, seed=11), start=1))
    predicted = engine.predict(
        engine.arrow_table(built.table_columns()), model.splink, model.params, floor=-5
    )
    assert len(predicted.pairs) > 50
    # Term frequencies of these rows, as Splink computed them for its prediction.
    params = Params(
        model.params.spec_hash,
        model.params.prior_weight,
        model.params.levels,
        engine.term_frequencies(engine.arrow_table(built.table_columns())),
    )
    for a, b, weight, ra, rb, conflict in predicted.pairs:
        s = score(built.features(ra), built.features(rb), params)
        assert s.weight == pytest.approx(weight, abs=1e-6), (a, b)
        assert s.conflict == conflict


# --- scoring ---------------------------------------------------------------------------------


def test_the_waterfall_adds_up_to_the_score_and_names_each_comparison() -> None:
    params = trained().params
    a = features({"first_name": "Jürgen", "last_name": "Müller", "birth_date": "1970-03-07"})
    b = features({"first_name": "Juergen", "last_name": "Mueller", "birth_date": "1970-07-03"})
    steps = explain(a, b, params)
    assert [s.comparison for s in steps] == ["prior", *(c.name for c in COMPARISONS)]
    assert total(steps) == pytest.approx(score(a, b, params).weight)
    assert steps[3].level == "day and month swapped"


def test_a_model_of_another_spec_is_refused_and_params_survive_json() -> None:
    params = trained().params
    assert Params.from_json(params.as_json()) == params
    stale = Params("0" * 16, params.prior_weight, params.levels, params.tf)
    with pytest.raises(ModelMismatch):
        stale.check()
    params.check()
    assert spec_hash() == params.spec_hash


def test_twins_and_father_and_son_are_in_conflict_whatever_else_they_share() -> None:
    params = trained().params
    home = {
        "last_name": "Schmidt",
        "street": "Lindenweg",
        "house_number": "3",
        "postcode": "50667",
        "city": "Köln",
        "email": "familie.schmidt@web.de",
        "phone": "+49221123456",
    }
    twin_a = features({**home, "first_name": "Lena", "birth_date": "1990-04-02"})
    twin_b = features({**home, "first_name": "Paula", "birth_date": "1990-04-02"})
    father = features({**home, "first_name": "Thomas", "birth_date": "1961-08-19"})
    son = features({**home, "first_name": "Thomas", "birth_date": "1992-01-30"})
    assert score(twin_a, twin_b, params).conflict
    assert score(father, son, params).conflict
    same = features({**home, "first_name": "Lena", "birth_date": "1990-02-04"})
    assert not score(twin_a, same, params).conflict  # a swapped date is no conflict


def test_tf_adjustment_makes_a_rare_surname_weigh_more_than_a_common_one() -> None:
    base = trained().params
    levels = tuple(tuple(lv) for lv in base.levels)
    params = Params(base.spec_hash, 0.0, levels, {"surname": {"mueller": 0.01, "wojcik": 1e-5}})
    common = score(features({"last_name": "Müller"}), features({"last_name": "Müller"}), params)
    rare = score(features({"last_name": "Wójcik"}), features({"last_name": "Wojcik"}), params)
    assert rare.weight - common.weight == pytest.approx(math.log2(0.01 / 1e-5), rel=1e-6)
    assert isinstance(levels[0][0], LevelParams)


# --- clustering ------------------------------------------------------------------------------


def _weights(table: dict[tuple[int, int], float]) -> Any:
    return lambda a, b: (table.get((a, b), -20.0), False)


def test_one_strong_link_does_not_chain_two_strangers() -> None:
    # 1-2 and 2-3 look alike, 1 and 3 clearly do not: 1 and 2 merge, 2-3 goes to review.
    pairs = [Pair(1, 2, 20.0), Pair(2, 3, 15.0)]
    result = cluster(pairs, auto=10, floor=3, weight_of=_weights({(1, 3): -8.0}))
    assert result.clusters == [[1, 2]]
    assert result.merges == [Pair(1, 2, 20.0)]
    assert result.review == [Pair(2, 3, 15.0)]
    assert result.held_back == 1


def test_a_group_joins_when_every_pair_across_is_plausible() -> None:
    pairs = [Pair(1, 2, 20.0), Pair(2, 3, 15.0)]
    result = cluster(pairs, auto=10, floor=3, weight_of=_weights({(1, 3): 5.0}))
    assert result.clusters == [[1, 2, 3]]
    assert {(m.a, m.b) for m in result.merges} == {(1, 2), (1, 3)}
    assert result.review == []


def test_rejected_and_conflicting_pairs_are_neither_merged_nor_proposed() -> None:
    pairs = [Pair(1, 2, 20.0), Pair(3, 4, 20.0, conflict=True), Pair(5, 6, 5.0)]
    result = cluster(
        pairs, auto=10, floor=3, weight_of=_weights({}), rejected=lambda a, b: (a, b) == (1, 2)
    )
    assert result.merges == [] and result.review == [Pair(5, 6, 5.0)]


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.tuples(st.integers(1, 12), st.integers(1, 12)).filter(lambda p: p[0] < p[1]),
        st.floats(-20, 30),
        max_size=40,
    ),
    st.sets(st.tuples(st.integers(1, 12), st.integers(1, 12)).filter(lambda p: p[0] < p[1])),
)
def test_no_cluster_ever_holds_an_implausible_or_rejected_pair(
    weights: dict[tuple[int, int], float], rejected: set[tuple[int, int]]
) -> None:
    pairs = [Pair(a, b, w) for (a, b), w in weights.items() if w >= 3]
    result = cluster(
        pairs,
        auto=10,
        floor=3,
        weight_of=_weights(weights),
        rejected=lambda a, b: (a, b) in rejected,
    )
    for group in result.clusters:
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                assert weights.get((a, b), -20.0) >= 3 and (a, b) not in rejected
    merged = {m.b for m in result.merges}
    assert len(merged) == len(result.merges)  # nobody merged twice
    assert not merged & {m.a for m in result.merges}  # no survivor merged away
    for p in result.review:
        assert p.weight >= 3 and (p.a, p.b) not in rejected


def test_crowded_blocking_keys_are_dropped() -> None:
    built = rows.build((i, {"first_name": "Anna", "last_name": "Schmidt"}) for i in range(1, 8))
    assert built.drop_crowded_keys(limit=5) == {"k_name": 1}
    assert {f.k_name for f in built.rows} == {None}


def test_arrow_table_has_the_columns_splink_reads() -> None:
    built = rows.build([(1, {"first_name": "Anna Maria", "email": "a@b.de"})])
    table = engine.arrow_table(built.table_columns())
    assert table.column("forename_tokens").to_pylist() == [["anna", "maria"]]
    assert table.column("surname_tokens").to_pylist() == [None]
    assert table.schema.field("email_household").type == pa.bool_()


def test_the_spark_backend_is_wired_and_says_what_it_needs() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        with pytest.raises(engine.EngineError, match="pip install 'pyspark"):
            engine.db_api("spark")
    else:  # pragma: no cover - a machine with pyspark
        assert type(engine.db_api("spark")).__name__ == "SparkAPI"
    with pytest.raises(engine.EngineError, match="unknown matching backend"):
        engine.db_api("oracle")
    assert type(engine.db_api("duckdb")).__name__ == "DuckDBAPI"
