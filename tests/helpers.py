"""Small builders shared by the storage tests."""

from __future__ import annotations

from relata.config import Settings
from relata.db import Database
from relata.ingest.records import BatchResult, RecordInput, upsert_records
from relata.ingest.sources import add_source, require_source


def make_source(db: Database, name: str, channel: str = "shop", trust: int = 50) -> None:
    with db.session() as session:
        add_source(session, name, channel, trust)


def put(db: Database, settings: Settings, source: str, *records: RecordInput) -> BatchResult:
    with db.session() as session:
        return upsert_records(session, require_source(session, source), list(records), settings)


def rec(key: str, **data: str) -> RecordInput:
    return RecordInput(key, dict(data))


def decision_settings(db: Database) -> Settings:
    """No background fold and no control group: a decisions test folds and syncs itself."""
    return Settings(
        database_url=db.url,
        decision_fold_seconds=0,
        decision_sync_seconds=0,
        decision_control_share=0,
    )
