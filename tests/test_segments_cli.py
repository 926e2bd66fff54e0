"""`relata segments …` as a user runs it: output, files, exit codes and one-line errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from relata.cli import app
from relata.config import get_settings
from tests.helpers import make_source, put, rec


@pytest.fixture
def relata(db, monkeypatch):
    monkeypatch.setenv("RELATA_DATABASE_URL", db.url)
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str, ok: bool = True):
        result = runner.invoke(app, list(args))
        if ok:
            assert result.exit_code == 0, (args, result.output, result.stderr)
        return result

    yield run
    get_settings.cache_clear()


@pytest.fixture
def customers(db):
    settings = get_settings()
    make_source(db, "shop")
    put(
        db,
        settings,
        "shop",
        rec("1", first_name="Anna", last_name="Arm", gender="f", city="München"),
        rec("2", first_name="Berta", last_name="Bach", gender="f", city="Köln"),
        rec("3", first_name="Carl", last_name="Christ", gender="m", city="München"),
    )


def test_a_marketers_session(relata, customers, tmp_path: Path):
    rule = 'gender = "f" UND city = „München“'
    made = relata("segments", "create", "Münchnerinnen", "--rule", rule, "--json")
    info = json.loads(made.stdout)
    assert info["rule"] == 'gender = "f" and city = "München"'
    assert info["rule_json"]["and"][1] == {"field": "city", "op": "=", "value": "München"}
    assert relata("segments", "count", "Münchnerinnen").stdout.strip() == "1"
    preview = relata("segments", "count", "--rule", 'city = "München"', "--json")
    assert json.loads(preview.stdout) == {"count": 2}

    target = tmp_path / "members.csv"
    done = relata("segments", "members", "Münchnerinnen", "--out", str(target))
    assert "1 members written" in done.stderr
    with target.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["first_name"], r["city"]) for r in rows] == [("Anna", "München")]

    relata("segments", "edit", "Münchnerinnen", "--rule", 'city = "München"')
    history = json.loads(relata("segments", "versions", "Münchnerinnen", "--json").stdout)
    assert [v["version"] for v in history] == [2, 1]

    refreshed = json.loads(relata("segments", "refresh", "--json").stdout)
    assert refreshed == [{"segment": "Münchnerinnen", "members": 2, "entered": 2, "left": 0}]
    listed = json.loads(relata("segments", "list", "--json").stdout)
    assert [(s["name"], s["version"], s["members"]) for s in listed] == [("Münchnerinnen", 2, 2)]

    relata("segments", "delete", "Münchnerinnen")
    assert json.loads(relata("segments", "list", "--json").stdout) == []


def test_the_json_form_is_accepted_from_a_file_and_check_prints_both_forms(relata, tmp_path):
    rule = tmp_path / "rule.json"
    rule.write_text(json.dumps({"field": "age", "op": ">=", "value": 18}), encoding="utf-8")
    relata("segments", "create", "adults", "--rule-json", str(rule))
    assert json.loads(relata("segments", "show", "adults", "--json").stdout)["rule"] == "age >= 18"
    checked = json.loads(relata("segments", "check", "--rule", "age > 1", "--json").stdout)
    assert checked == {"rule": "age > 1", "rule_json": {"field": "age", "op": ">", "value": 1}}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("segments", "create", "x", "--rule", "age >"),
         "error: line 1, column 6: expected a value"),
        (("segments", "create", "x", "--rule", "agee > 3"),
         "error: line 1, column 1: unknown field 'agee'; did you mean age?"),
        (("segments", "create", "x"), "error: give the rule with --rule"),
        (("segments", "create", "a/b", "--rule", "age > 1"), "error: invalid segment name"),
        (("segments", "count", "nope"), "error: no segment 'nope'"),
        (("segments", "count"), "error: give a segment NAME or a --rule"),
        (("segments", "members", "nope", "--out", "never.csv"), "error: no segment 'nope'"),
        (("segments", "edit", "nope", "--rule", "age > 1"), "error: no segment 'nope'"),
        (("segments", "refresh", "nope"), "error: no segment 'nope'"),
        (("segments", "refresh", "--every", "5x"), "error: --every '5x': give a period like"),
        (("segments", "refresh", "--every", "0h"), "error: --every '0h': give a period like"),
        (("segments", "create", "x", "--rule", "city = 'x'; DROP TABLE customers; --"),
         "error: line 1, column 11: unexpected character ';'"),
        (("segments", "create", "x", "--rule-json", "nope.json"), "error:"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_on_stderr_and_exit_code_1(relata, args, message, tmp_path):
    result = relata(*args, ok=False)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(message), result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output
    assert not Path("never.csv").exists()


def test_a_name_that_exists_and_a_circle_are_refused(relata):
    relata("segments", "create", "a", "--rule", "age > 1")
    relata("segments", "create", "b", "--rule", 'in segment "a"')
    again = relata("segments", "create", "a", "--rule", "age > 2", ok=False)
    assert again.stderr == "error: segment 'a' exists already\n"
    circle = relata("segments", "edit", "a", "--rule", 'in segment "b"', ok=False)
    assert circle.stderr == "error: segments refer to each other in a circle: a → b → a\n"
    used = relata("segments", "delete", "a", ok=False)
    assert used.stderr == "error: segment 'a' is used by b; change those first\n"


def test_refresh_every_period_repeats_until_stopped(relata, customers, monkeypatch):
    import time

    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:
            raise KeyboardInterrupt  # the operator stops the loop

    monkeypatch.setattr(time, "sleep", sleep)
    relata("segments", "create", "alle", "--rule", "age > 0")
    result = relata("segments", "refresh", "--every", "24h", ok=False)
    assert slept == [86400, 86400]
    assert result.stdout.count("alle:") == 2
