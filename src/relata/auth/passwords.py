"""Password hashing (argon2id) and the secrets behind API keys and session cookies."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10
MAX_LENGTH = 1024  # argon2 takes any length; this only bounds the work a request can ask for
KEY_PREFIX = "rk_"

# argon2-cffi's defaults are RFC 9106's low-memory profile (argon2id, t=3, 64 MiB).
_hasher = PasswordHasher()


class WeakPassword(ValueError):
    pass


def check_strength(password: str, username: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"the password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"the password must have at most {MAX_LENGTH} characters")
    if password.strip().casefold() == username.strip().casefold():
        raise WeakPassword("the password must not be the user name")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Always does one argon2 verification, so an unknown user takes as long as a known one."""
    # Longer than any stored password can be: checked against the dummy, never truncated
    # (a truncated guess would match a password that is its prefix).
    usable = stored_hash if len(password) <= MAX_LENGTH else None
    try:
        _hasher.verify(usable or _dummy_hash(), password[: MAX_LENGTH + 1])
    except (VerificationError, InvalidHashError):
        return False
    return usable is not None


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)


def new_token() -> str:
    """256 bits from the OS: sha256 of it is enough to store (no guessing, no rainbow table)."""
    return secrets.token_urlsafe(32)


def new_api_key() -> str:
    return KEY_PREFIX + new_token()


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def csrf_token_of(session_token: str) -> str:
    """The CSRF token of a web session, derived so it need not be stored. Knowing it (it is
    in every page) tells nothing about the session token."""
    return hashlib.sha256(b"relata-csrf:" + session_token.encode()).hexdigest()


def same(a: str | None, b: str | None) -> bool:
    """Constant-time comparison; a missing value never matches."""
    if not a or not b:
        return False
    return hmac.compare_digest(a.encode(), b.encode())
