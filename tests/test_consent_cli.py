"""relata consent, relata gdpr and their errors as a user meets them on the command line."""

from __future__ import annotations

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

    def run(*args: str, ok: bool = True, stdin: str | None = None):
        result = runner.invoke(app, list(args), input=stdin)
        if ok:
            assert result.exit_code == 0, (args, result.output, result.stderr)
        return result

    yield run
    get_settings.cache_clear()


@pytest.fixture
def customer(db, settings) -> int:
    make_source(db, "shop")
    done = put(db, settings, "shop", rec("K1", first_name="Ida", email="ida@example.de"))
    return done.customer_of["K1"]


def test_grant_check_revoke_and_show(relata, customer):
    cid = str(customer)
    assert relata("consent", "check", cid, "--purpose", "marketing", "--channel", "email")
    out = relata("consent", "check", cid, "--purpose", "marketing", "--channel", "email").stdout
    assert out.startswith("denied")
    relata(
        "consent",
        "grant",
        cid,
        "--purpose",
        "marketing",
        "--channel",
        "email",
        "--version",
        "v1",
        "--form",
        "phone call",
    )
    check = relata(
        "consent", "check", cid, "--purpose", "marketing", "--channel", "email", "--json"
    )
    assert json.loads(check.stdout) == {"allowed": True, "status": "granted"}
    relata("consent", "revoke", cid, "--purpose", "marketing", "--channel", "email")
    shown = json.loads(relata("consent", "show", cid, "--json").stdout)
    assert [e["action"] for e in shown["ledger"]] == ["grant", "revoke"]
    assert shown["ledger"][0]["evidence"] == {"form": "phone call"}
    assert "revoked" in relata("consent", "show", cid).stdout


def test_opt_in_prints_the_confirmation_path(relata, customer):
    out = relata("consent", "opt-in", str(customer), "--json").stdout
    assert json.loads(out)["confirm_path"].startswith("/c/confirm/")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["consent", "grant", "{c}", "--purpose", "spam", "--channel", "email"], "unknown purpose"),
        (
            ["consent", "check", "999", "--purpose", "marketing", "--channel", "email"],
            "no customer with id 999",
        ),
        (["gdpr", "export", "999"], "no customer with id 999"),
        (["gdpr", "erase", "999", "--yes"], "no customer with id 999"),
    ],
)
def test_errors_are_one_line_and_exit_1(relata, customer, args, message):
    result = relata(*[a.format(c=customer) for a in args], ok=False)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_export_then_erase(relata, customer, tmp_path: Path):
    cid = str(customer)
    doc = json.loads(relata("gdpr", "export", cid).stdout)
    assert doc["golden_record"]["email"] == "ida@example.de"
    target = tmp_path / "ida.json"
    relata("gdpr", "export", cid, "--out", str(target))
    assert json.loads(target.read_text())["customer_id"] == customer
    refused = relata("gdpr", "erase", cid, ok=False, stdin="n\n")
    assert refused.exit_code == 1 and "not erased" in refused.stderr
    report = json.loads(relata("gdpr", "erase", cid, "--yes", "--json").stdout)
    assert report["customer_id"] == customer and report["tombstones"] >= 2
    again = relata("gdpr", "export", cid, ok=False)
    assert again.exit_code == 1 and "was erased" in again.stderr
