"""The per-process principal cache: how long another process's revocation takes to arrive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from relata.api.app import create_app
from relata.auth.cache import PrincipalCache
from relata.auth.models import ApiKey
from relata.auth.permissions import Principal
from relata.config import Settings
from relata.db import utcnow
from tests.conftest import api_key

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def anna(valid_until: datetime | None = None) -> Principal:
    return Principal("user", 1, "anna", frozenset({"customers:read"}), valid_until=valid_until)


def test_an_entry_lives_for_the_configured_seconds():
    clock = Clock()
    cache = PrincipalCache(5, clock=clock)
    cache.put("k", anna())
    clock.now += 4.9
    assert cache.get("k", NOW) == anna()
    clock.now += 0.2
    assert cache.get("k", NOW) is None


def test_an_entry_never_outlives_its_session():
    cache = PrincipalCache(60)
    cache.put("k", anna(valid_until=NOW + timedelta(seconds=1)))
    assert cache.get("k", NOW) is not None
    assert cache.get("k", NOW + timedelta(seconds=1)) is None


def test_forgetting_and_the_size_bound_and_off():
    cache = PrincipalCache(60, size=2)
    for key in ("a", "b", "c"):
        cache.put(key, anna())
    assert cache.get("a", NOW) is None and cache.get("c", NOW) is not None
    cache.forget("c")
    assert cache.get("c", NOW) is None
    cache.clear()
    assert cache.get("b", NOW) is None
    off = PrincipalCache(0)
    off.put("k", anna())
    assert off.get("k", NOW) is None


def test_a_revocation_elsewhere_arrives_within_the_cache_time(db):
    settings = Settings(database_url=db.url, auth_cache_seconds=5)
    key = api_key(db, "agent")
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(settings, db)) as client:
        clock = Clock()
        client.app.state.principals.clock = clock  # type: ignore[attr-defined]
        assert client.get("/v1/me", headers=auth).status_code == 200
        with db.session() as session:  # `relata apikeys revoke` in another process
            session.execute(update(ApiKey).values(revoked_at=utcnow()))
        assert client.get("/v1/me", headers=auth).status_code == 200
        clock.now += 5.1
        assert client.get("/v1/me", headers=auth).status_code == 401


def test_a_revocation_in_this_process_is_immediate(db):
    settings = Settings(database_url=db.url, auth_cache_seconds=60)
    key = api_key(db, "events:ingest")
    admin = {"Authorization": f"Bearer {api_key(db, 'admin')}"}
    with TestClient(create_app(settings, db)) as client:
        assert client.get("/v1/me", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        name = client.get("/v1/api-keys", headers=admin).json()
        ingest = next(k["name"] for k in name if k["scopes"] == ["events:ingest"])
        assert client.delete(f"/v1/api-keys/{ingest}", headers=admin).status_code == 200
        assert client.get("/v1/me", headers={"Authorization": f"Bearer {key}"}).status_code == 401
