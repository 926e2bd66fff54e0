"""Storage tests run on SQLite and on PostgreSQL.

Every test that takes ``db`` runs twice. PostgreSQL gets a schema of its own for
the session (``RELATA_TEST_POSTGRES_URL``); when it is unreachable the PostgreSQL
half is skipped, except under ``CI``, where that fails the run.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import OperationalError

import relata.models  # noqa: F401
from relata.config import Settings
from relata.db import Base, Database

PG_URL = os.environ.get(
    "RELATA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _with_search_path(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "relata.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    db.dispose()
    return path


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[str]:
    schema = f"relata_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except OperationalError as exc:
        admin.dispose()
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL unreachable at {PG_URL} (CI requires it): {exc.orig}")
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}")
    url = _with_search_path(PG_URL, schema)
    db = Database(url)
    db.migrate()
    db.dispose()
    yield url
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def _truncate(db: Database) -> None:
    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        path = tmp_path / "relata.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        database = Database(f"sqlite:///{path}")
    else:
        database = Database(request.getfixturevalue("pg_schema"))
        _truncate(database)
    yield database
    database.dispose()


@pytest.fixture
def settings(db: Database) -> Settings:
    return Settings(database_url=db.url)


@pytest.fixture
def client(db: Database, settings: Settings) -> Iterator[object]:
    from fastapi.testclient import TestClient

    from relata.api.app import create_app

    with TestClient(create_app(settings, db)) as test_client:
        # Every route needs credentials now: tests call as an admin unless they say otherwise.
        test_client.headers["Authorization"] = f"Bearer {api_key(db, 'admin')}"
        yield test_client


def api_key(db: Database, *scopes: str) -> str:
    """A fresh API key with these scopes (permissions or role names)."""
    from relata.auth import service
    from relata.db import utcnow

    with db.session() as session:
        _, key = service.create_api_key(session, f"test-{uuid.uuid4().hex[:8]}", scopes, utcnow())
    return key


def web_session(db: Database, role: str, username: str | None = None) -> tuple[str, str]:
    """A user of this role, signed in: the session cookie's token and the CSRF token.

    The user has no usable password ("!" is no argon2 hash): tests that sign in through
    the login form create their users with ``auth.service.add_user``.
    """
    from relata.auth import passwords, service
    from relata.auth.models import User
    from relata.db import utcnow

    name = username or f"{role}-{uuid.uuid4().hex[:8]}"
    with db.session() as session:
        user = session.scalar(select(User).where(User.username == name))
        if user is None:
            user = User(username=name, role=role, password_hash="!")
            session.add(user)
            session.flush()
        token = service.start_session(session, user.id, Settings(database_url=db.url), utcnow())
    return token, passwords.csrf_token_of(token)


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium for the browser tests; CI installs it, elsewhere they are skipped."""
    from tests.browser import CHROMIUM

    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing (CI installs the Debian chromium package)")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    return CHROMIUM
