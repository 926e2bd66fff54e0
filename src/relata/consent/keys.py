"""The two keys of the consent domain: the erasure salt and the token-signing key.

Each comes from the settings (``RELATA_ERASURE_SALT``, ``RELATA_TOKEN_SECRET``) or, when
unset, is generated once and stored in ``instance_secrets``, so a newcomer needs no
configuration and every process on one database uses the same key. Setting them keeps
them out of a database dump: with the salt in the dump, an attacker can test guessed
e-mail addresses against the erasure tombstones.

The salt's fingerprint is stored when the first tombstone is made with it; a different
salt later is refused (``SecretMismatch``), because every tombstone made before would
silently stop matching and erased people would come back with the next import.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import weakref
from typing import Any

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from relata.consent.errors import SecretMismatch
from relata.consent.models import InstanceSecret
from relata.db import insert_ignoring_duplicates, utcnow

SALT = "erasure_salt"
TOKEN_KEY = "token_secret"
_IN_USE = ".in_use"

# Per connection pool (one per database an engine points at), so tests and tools that
# open several databases in one process never share keys. Keys never change, so no TTL.
_known: weakref.WeakKeyDictionary[Any, dict[str, bytes]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def fingerprint(value: str) -> str:
    return hashlib.sha256(b"relata-key-fingerprint\0" + value.encode()).hexdigest()


def _pool(session: Session) -> Any:
    return session.get_bind().engine.pool


def _insert(session: Session, name: str, value: str | None, print_: str) -> None:
    session.execute(
        insert_ignoring_duplicates(session, InstanceSecret.__table__).values(
            name=name, value=value, fingerprint=print_, created_at=utcnow()
        )
    )


def _row(session: Session, name: str) -> tuple[str | None, str] | None:
    # Core, not session.get: the identity map would hide a row another process just stored.
    row = session.execute(
        select(InstanceSecret.value, InstanceSecret.fingerprint).where(InstanceSecret.name == name)
    ).first()
    return None if row is None else (row[0], row[1])


def key(session: Session, name: str, configured: SecretStr | None) -> bytes:
    """The key ``name``: the configured one, else this database's, generated on first use.

    Generating writes a row in ``session``: call it in a write transaction.
    """
    if configured is not None:
        return configured.get_secret_value().encode()
    with _lock:
        cached = _known.get(_pool(session), {}).get(name)
    if cached is not None:
        return cached
    row = _row(session, name)
    if row is None:
        generated = secrets.token_hex(32)
        _insert(session, name, generated, fingerprint(generated))
        row = _row(session, name)  # another process may have won the race: use theirs
    if row is None or row[0] is None:
        raise SecretMismatch(f"the key {name!r} of this database has no value")
    result = row[0].encode()
    with _lock:
        _known.setdefault(_pool(session), {})[name] = result
    return result


def salt_for_lookup(session: Session, configured: SecretStr | None) -> bytes | None:
    """The salt tombstones were made with, or None when no tombstone exists yet."""
    used = _row(session, SALT + _IN_USE)
    if used is None:
        return None
    salt = key(session, SALT, configured)
    _check(used[1], salt)
    return salt


def salt_for_erasure(session: Session, configured: SecretStr | None) -> bytes:
    """The salt to make tombstones with; the first erasure records which one it is."""
    salt = key(session, SALT, configured)
    _insert(session, SALT + _IN_USE, None, fingerprint(salt.decode()))
    used = _row(session, SALT + _IN_USE)
    assert used is not None
    _check(used[1], salt)
    return salt


def _check(stored: str, salt: bytes) -> None:
    if stored != fingerprint(salt.decode()):
        raise SecretMismatch(
            "the erasure salt differs from the one this database's tombstones were made with "
            "(RELATA_ERASURE_SALT changed, or was set or unset after the first erasure); "
            "restore it, or erased people would come back with the next import"
        )


def forget_cached() -> None:
    """For tests that drop and recreate keys in one database."""
    with _lock:
        _known.clear()
