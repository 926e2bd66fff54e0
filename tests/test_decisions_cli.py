"""The decisions CLI (decide, offers, policies, decisions) as users run it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from relata.cli import app
from relata.config import get_settings
from relata.consent import service as consent
from tests.helpers import make_source, put, rec


@pytest.fixture
def relata(db, monkeypatch):
    monkeypatch.setenv("RELATA_DATABASE_URL", db.url)
    monkeypatch.setenv("RELATA_DECISION_CONTROL_SHARE", "0")
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
def customer(db, settings) -> int:
    make_source(db, "shop")
    cid = put(
        db, settings, "shop", rec("K1", first_name="Eva", email="eva@example.de")
    ).customer_of["K1"]
    with db.session() as s:
        consent.record(s, settings, cid, "personalisation", "web", "grant", via="cli")
    return cid


def test_manage_offers_and_decide_with_explanations(relata, customer, tmp_path: Path):
    catalogue = tmp_path / "offers.json"
    catalogue.write_text(
        json.dumps(
            [
                {"key": "shoes", "name": "Shoes", "channels": ["web"], "value": 20},
                {
                    "key": "older",
                    "name": "Older",
                    "channels": ["web"],
                    "value": 50,
                    "rule": "age > 60",
                },
            ]
        )
    )
    assert json.loads(relata("offers", "import", str(catalogue), "--json").stdout) == {
        "created": 2,
        "updated": 0,
    }
    relata("offers", "set", "shoes", "value=25", 'placements=["home"]')
    listed = json.loads(relata("offers", "list", "--json").stdout)
    assert {o["key"]: o["value"] for o in listed} == {"older": 50, "shoes": 25}
    shown = json.loads(relata("offers", "show", "shoes", "--json").stdout)
    assert [v["version"] for v in shown["versions"]] == [2, 1]

    text = relata("decide", str(customer), "--channel", "web", "--explain").stdout
    assert "shoes" in text and "rule: age > 60" in text
    found = json.loads(
        relata(
            "decide",
            str(customer),
            "--channel",
            "web",
            "--placement",
            "home",
            "--context",
            "device=mobile",
            "--json",
        ).stdout
    )
    assert [o["key"] for o in found["offers"]] == ["shoes"] and found["decision_id"]
    dry = json.loads(
        relata("decide", str(customer), "--channel", "web", "--dry-run", "--json").stdout
    )
    assert dry["decision_id"] == ""
    relata("offers", "archive", "shoes")
    assert (
        json.loads(relata("decide", str(customer), "--channel", "web", "--json").stdout)["offers"]
        == []
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("decide", "999999", "--channel", "web"), "no customer with id 999999"),
        (("decide", "1", "--channel", "fax"), "unknown channel 'fax'"),
        (("decide", "abc", "--channel", "web"), "customer must be a customer id"),
        (("decide", "1", "--channel", "web", "--context", "novalue"), "key=value"),
        (("decide", "1", "--channel", "web", "--context-json", "[1]"), "JSON object"),
        (("offers", "show", "nope"), "no offer 'nope'"),
        (("offers", "set", "nope", "value=1"), "no offer 'nope'"),
        (("policies", "add", "p", "--kind", "frequency", "--channel", "email"), "max_count"),
        (("decisions", "show", "nope"), "no decision"),
    ],
)
def test_bad_input_is_one_line_on_stderr(relata, customer, args, message):
    result = relata(*args, ok=False)
    assert result.exit_code != 0
    assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output


def test_policies(relata, customer):
    relata(
        "policies",
        "add",
        "email-weekly",
        "--kind",
        "frequency",
        "--channel",
        "email",
        "--max",
        "1",
        "--days",
        "7",
    )
    listed = json.loads(relata("policies", "list", "--json").stdout)
    assert listed[0]["name"] == "email-weekly" and listed[0]["channels"] == ["email"]


def write_log(path: Path, n: int = 4000) -> Path:
    rng = np.random.default_rng(0)
    with path.open("w") as fh:
        for _ in range(n):
            seg = str(rng.choice(["a", "b"]))
            action = int(rng.integers(3))
            best = 0 if seg == "a" else 2
            reward = int(rng.random() < (0.8 if action == best else 0.1))
            fh.write(
                json.dumps(
                    {
                        "context": {"seg": seg},
                        "action": action,
                        "propensity": 1 / 3,
                        "reward": reward,
                    }
                )
                + "\n"
            )
    return path


def test_evaluate_prints_a_table_and_json(relata, tmp_path):
    log = write_log(tmp_path / "log.jsonl")
    report = json.loads(
        relata("decisions", "evaluate", str(log), "--train-fraction", "0.5", "--json").stdout
    )
    assert report["train_rows"] == 2000 and report["actions"] == 3
    assert abs(report["snips"]["value"] - 0.8) < 0.06
    assert report["logging_policy"]["high"] < 0.4
    table = relata("decisions", "evaluate", str(log)).stdout
    assert "SNIPS" in table and "logging policy" in table and "DR" in table


def test_evaluate_refuses_a_bad_log_in_one_line(relata, tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text('{"context": {}, "action": "a", "propensity": 0, "reward": 1}\n')
    result = relata("decisions", "evaluate", str(log), ok=False)
    assert result.exit_code == 1 and "line 1: propensity must be above 0" in result.stderr
    missing = relata("decisions", "evaluate", str(tmp_path / "none.jsonl"), ok=False)
    assert missing.exit_code == 1 and "no such file" in missing.stderr


def test_train_and_performance(relata, customer, db, settings):
    from relata.decisions import offers
    from relata.decisions.schemas import OfferWrite

    with db.session() as s:
        offers.create_offer(s, OfferWrite(key="a", name="A", channels=["web"], value=1), settings)
    relata("decide", str(customer), "--channel", "web")
    trained = json.loads(relata("decisions", "train", "--json").stdout)
    assert trained["model_id"] == 1 and trained["weights_fitted"] is False
    assert trained["outcomes_folded"] == 1
    perf = json.loads(relata("decisions", "performance", "--json").stdout)
    assert perf[0]["key"] == "a" and perf[0]["impressions"] == 1


def test_learn_once_folds_what_waits(relata, customer, db, settings):
    from relata.decisions import offers, sync
    from relata.decisions.schemas import OfferWrite

    with db.session() as s:
        offers.create_offer(s, OfferWrite(key="a", name="A", channels=["web"], value=1), settings)
    relata("decide", str(customer), "--channel", "web")
    with db.session(write=False) as s:
        assert sync.pending(s) == 1
    assert relata("decisions", "learn", "--once").stdout.strip() == "1 outcomes folded"
    with db.session(write=False) as s:
        assert sync.pending(s) == 0
    assert relata("decisions", "learn", "--once").stdout.strip() == "0 outcomes folded"
