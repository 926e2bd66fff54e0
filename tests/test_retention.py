"""Retention: events past their type's period are deleted, and counted; nothing else is."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from relata.cli import app
from relata.config import Settings, get_settings
from relata.consent import retention
from relata.db import utcnow
from relata.events import service as events
from relata.events.api import parse
from relata.events.models import Event
from relata.profiles.models import Holding


def days_ago(n: int) -> str:
    return (utcnow() - timedelta(days=n)).isoformat()


@pytest.fixture
def timeline(db, settings) -> None:
    messages = (
        [
            {
                "type": "page",
                "anonymousId": "v1",
                "name": "Home",
                "messageId": f"p{n}",
                "timestamp": days_ago(n),
            }
            for n in (1, 40, 400)
        ]
        + [
            {
                "type": "track",
                "anonymousId": "v1",
                "event": "Product Viewed",
                "messageId": f"v{n}",
                "timestamp": days_ago(n),
            }
            for n in (5, 50)
        ]
        + [
            {
                "type": "track",
                "anonymousId": "v1",
                "event": "Order Completed",
                "messageId": "o1",
                "timestamp": days_ago(900),
                "properties": {"order_id": "O1", "products": [{"product_id": "P", "price": 5}]},
            },
        ]
    )
    with db.session() as session:
        events.ingest(session, parse(messages).batch, settings)


def remaining(db) -> list[str]:
    with db.session(write=False) as session:
        return sorted(session.scalars(select(Event.message_id)))


def test_each_rule_deletes_what_is_older_and_reports_it(db, timeline):
    rules = {"page": 30, "Product Viewed": 10, "Order Completed": 365}
    report = retention.run(db, rules).as_dict()
    assert report["deleted"] == {"Order Completed": 1, "Product Viewed": 1, "page": 2}
    assert report["total"] == 4
    assert remaining(db) == ["p1", "v5"]
    with db.session(write=False) as session:
        # The purchase stays a holding; only the event it came from is gone.
        assert session.scalar(select(Holding.event_id)) is None
        assert session.scalar(select(func.count()).select_from(Holding)) == 1


def test_a_name_rule_wins_over_its_type_and_unlisted_events_are_kept(db, timeline):
    report = retention.run(db, {"track": 20, "Product Viewed": 100}).as_dict()
    assert report["deleted"] == {"track": 1, "Product Viewed": 0}  # the order, not the views
    assert remaining(db) == ["p1", "p40", "p400", "v5", "v50"]


def test_a_dry_run_counts_and_deletes_nothing(db, timeline):
    before = remaining(db)
    assert retention.run(db, {"page": 30}, dry_run=True).as_dict()["deleted"] == {"page": 2}
    assert remaining(db) == before


def test_no_rules_no_deletions(db, timeline):
    assert retention.run(db, {}).as_dict()["total"] == 0
    assert len(remaining(db)) == 6


def test_the_command_reports_counts(db, timeline, monkeypatch):
    monkeypatch.setenv("RELATA_DATABASE_URL", db.url)
    monkeypatch.setenv("RELATA_RETENTION_DAYS", '{"page": 30}')
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["retention", "run", "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["deleted"] == {"page": 2}
        monkeypatch.setenv("RELATA_RETENTION_DAYS", '{"page": 0}')
        get_settings.cache_clear()
        bad = CliRunner().invoke(app, ["retention", "run"])
        assert bad.exit_code == 2 and "at least 1 day" in bad.stderr
    finally:
        get_settings.cache_clear()


def test_periods_must_be_positive():
    with pytest.raises(ValueError, match="at least 1 day"):
        Settings(retention_days={"page": 0})
