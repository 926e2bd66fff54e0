"""Alembic environment: runs on the connection relata hands over, or on RELATA_DATABASE_URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

import relata.models  # noqa: F401  (every table on the metadata)
from relata.config import get_settings
from relata.db import Base, make_engine

config = context.config
target_metadata = Base.metadata


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite can't ALTER most things
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    engine = make_engine(get_settings().database_url)
    with engine.begin() as conn:
        run(conn)
    engine.dispose()
