"""CSV exports: every source record's customer (to judge linkage), and golden records."""

from __future__ import annotations

import csv
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from relata.ingest.models import Source, SourceRecord
from relata.profiles.models import Customer
from relata.profiles.survivorship import GOLDEN_FIELDS


def export_links(session: Session, out: TextIO) -> int:
    writer = csv.writer(out)
    writer.writerow(["source", "source_key", "customer_id"])
    rows = session.execute(
        select(Source.name, SourceRecord.source_key, SourceRecord.customer_id)
        .join(Source, Source.id == SourceRecord.source_id)
        .order_by(SourceRecord.id)
        .execution_options(yield_per=10_000)
    )
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    return count


def export_customers(session: Session, out: TextIO) -> int:
    writer = csv.writer(out)
    columns = ["id", *GOLDEN_FIELDS]
    writer.writerow(columns)
    stmt = (
        select(*(getattr(Customer, c) for c in columns))
        .where(Customer.status == "active")
        .order_by(Customer.id)
        .execution_options(yield_per=10_000)
    )
    count = 0
    for row in session.execute(stmt):
        writer.writerow(["" if v is None else v for v in row])
        count += 1
    return count
