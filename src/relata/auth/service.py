"""Users, API keys, web sessions and the login rate limit. Services take a session and flush.

Secrets (passwords, API keys, session tokens) are never stored or logged: passwords as
argon2id hashes, keys and tokens (256 random bits) as SHA-256.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, bindparam, delete, or_, select
from sqlalchemy.orm import Session

from relata.auth import passwords
from relata.auth.models import ApiKey, LoginAttempt, User, WebSession
from relata.auth.permissions import ALL, ROLES, Principal, expand
from relata.config import Settings
from relata.db import lock_keys

SESSION_COOKIE = "relata_session"
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class AuthError(ValueError):
    """Bad input to user or key management: answered 422 / one line on the CLI."""


class AlreadyExists(AuthError):
    pass


class NotFound(AuthError):
    pass


@dataclass(frozen=True, slots=True)
class UserInfo:
    id: int
    username: str
    role: str
    active: bool
    created_at: datetime
    last_login_at: datetime | None


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    id: int
    name: str
    prefix: str
    scopes: list[str]
    role: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


def fold_username(username: str) -> str:
    return unicodedata.normalize("NFKC", username).strip().casefold()[:64]


def _user_info(u: User) -> UserInfo:
    return UserInfo(u.id, u.username, u.role, u.active, u.created_at, u.last_login_at)


def _key_info(k: ApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(
        k.id, k.name, k.prefix, list(k.scopes), k.role, k.created_at, k.expires_at, k.revoked_at
    )


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise AuthError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")


# --- users ---------------------------------------------------------------------------------


def _user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == fold_username(username)))
    if user is None:
        raise NotFound(f"no user {username!r}")
    return user


def add_user(session: Session, username: str, role: str, password: str) -> UserInfo:
    name = fold_username(username)
    if not _USERNAME.fullmatch(name):
        raise AuthError("a user name is 1–64 characters of a-z, 0-9 and . _ @ -")
    _check_role(role)
    try:
        passwords.check_strength(password, name)
    except passwords.WeakPassword as exc:
        raise AuthError(str(exc)) from None
    if session.scalar(select(User.id).where(User.username == name)) is not None:
        raise AlreadyExists(f"user {name!r} exists already")
    user = User(username=name, role=role, password_hash=passwords.hash_password(password))
    session.add(user)
    session.flush()
    return _user_info(user)


def list_users(session: Session) -> list[UserInfo]:
    return [_user_info(u) for u in session.scalars(select(User).order_by(User.username))]


def disable_user(session: Session, username: str) -> UserInfo:
    """The user can no longer sign in, and every browser they are signed in with is out."""
    user = _user(session, username)
    user.active = False
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    session.flush()
    return _user_info(user)


def set_password(session: Session, username: str, password: str) -> UserInfo:
    user = _user(session, username)
    try:
        passwords.check_strength(password, user.username)
    except passwords.WeakPassword as exc:
        raise AuthError(str(exc)) from None
    user.password_hash = passwords.hash_password(password)
    user.active = True
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    session.flush()
    return _user_info(user)


# --- API keys ------------------------------------------------------------------------------


def create_api_key(
    session: Session,
    name: str,
    scopes: Iterable[str],
    now: datetime,
    expires_days: int | None = None,
) -> tuple[ApiKeyInfo, str]:
    """A new key: its details and the key itself, which is shown this once and never again."""
    if not _NAME.fullmatch(name):
        raise AuthError("a key name is 1–64 characters of A-Z, a-z, 0-9 and . _ -")
    wanted = list(scopes)
    if not wanted:
        raise AuthError("a key needs at least one scope (a permission or a role)")
    try:
        granted = expand(wanted)
    except ValueError as exc:
        raise AuthError(str(exc)) from None
    if expires_days is not None and expires_days < 1:
        raise AuthError("expiry must be at least 1 day")
    if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
        raise AlreadyExists(f"an API key named {name!r} exists already")
    secret = passwords.new_api_key()
    roles = [s for s in wanted if s in ROLES]
    key = ApiKey(
        name=name,
        prefix=secret[:10],
        secret_hash=passwords.digest(secret),
        scopes=sorted(granted),
        role=roles[0] if len(roles) == 1 and len(wanted) == 1 else None,
        created_at=now,
        expires_at=now + timedelta(days=expires_days) if expires_days else None,
    )
    session.add(key)
    session.flush()
    return _key_info(key), secret


def list_api_keys(session: Session) -> list[ApiKeyInfo]:
    return [_key_info(k) for k in session.scalars(select(ApiKey).order_by(ApiKey.name))]


def revoke_api_key(session: Session, name: str, now: datetime) -> ApiKeyInfo:
    key = session.scalar(select(ApiKey).where(ApiKey.name == name))
    if key is None:
        raise NotFound(f"no API key {name!r}")
    if key.revoked_at is None:
        key.revoked_at = now
        session.flush()
    return _key_info(key)


# --- who is calling ------------------------------------------------------------------------
# Lookups go by the SHA-256 of the secret through a unique index. The caller does not
# control the digest's bytes, so the index comparison leaks nothing about a valid secret.
# They run on every request, so they take a plain Connection too (a Session costs ~4x).


# Built once: constructing a statement costs more than running it from the cache.
_KEY_LOOKUP = select(ApiKey.id, ApiKey.name, ApiKey.scopes, ApiKey.role, ApiKey.expires_at).where(
    ApiKey.secret_hash == bindparam("digest"),
    ApiKey.revoked_at.is_(None),
    or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > bindparam("now")),
)
_SESSION_LOOKUP = (
    select(User.id, User.username, User.role, WebSession.expires_at)
    .join(WebSession, WebSession.user_id == User.id)
    .where(
        WebSession.token_hash == bindparam("digest"),
        WebSession.expires_at > bindparam("now"),
        User.active.is_(True),
    )
)


def principal_for_api_key(
    session: Session | Connection, secret: str, now: datetime
) -> Principal | None:
    if not secret.startswith(passwords.KEY_PREFIX) or len(secret) > 128:
        return None
    params = {"digest": passwords.digest(secret), "now": now}
    row = session.execute(_KEY_LOOKUP, params).first()
    if row is None:
        return None
    # A permission that no longer exists in the code grants nothing.
    granted = frozenset(row.scopes) & ALL
    return Principal(
        "api_key", row.id, row.name, granted, role=row.role, valid_until=row.expires_at
    )


def principal_for_session(
    session: Session | Connection, token: str, now: datetime
) -> Principal | None:
    if len(token) > 128:
        return None
    params = {"digest": passwords.digest(token), "now": now}
    row = session.execute(_SESSION_LOOKUP, params).first()
    if row is None:
        return None
    granted = ROLES.get(row.role, frozenset())
    return Principal(
        "user",
        row.id,
        row.username,
        granted,
        role=row.role,
        csrf_token=passwords.csrf_token_of(token),
        valid_until=row.expires_at,
    )


def end_session(session: Session, token: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_hash == passwords.digest(token)))


def start_session(session: Session, user_id: int, settings: Settings, now: datetime) -> str:
    """A new session for a user (after a login); returns the cookie's token."""
    token = passwords.new_token()
    expires = now + timedelta(hours=settings.session_hours)
    session.add(
        WebSession(
            token_hash=passwords.digest(token), user_id=user_id, created_at=now, expires_at=expires
        )
    )
    session.flush()
    return token


# --- login and its rate limit --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoginTicket:
    """An attempt, counted before the password is checked; ``password_hash`` is None when
    there is no active user of that name (a dummy hash is checked instead)."""

    username: str
    user_id: int | None
    password_hash: str | None


@dataclass(frozen=True, slots=True)
class Throttled:
    retry_after: int  # seconds


def _wait(
    session: Session, where: ColumnElement[bool], limit: int, settings: Settings, now: datetime
) -> int:
    """Seconds until fewer than ``limit`` failures remain in the window (0: not blocked)."""
    window = timedelta(seconds=settings.login_window_seconds)
    recent = session.scalars(
        select(LoginAttempt.at)
        .where(where, LoginAttempt.at > now - window)
        .order_by(LoginAttempt.at.desc())
        .limit(limit)
    ).all()
    if len(recent) < limit:
        return 0
    return max(1, math.ceil((recent[-1] + window - now).total_seconds()))


def begin_login(
    session: Session, username: str, ip: str, settings: Settings, now: datetime
) -> LoginTicket | Throttled:
    """Count the attempt first, then the caller checks the password outside the transaction
    (argon2 takes tens of milliseconds; no write lock is held meanwhile)."""
    name, ip = fold_username(username), ip[:64]
    # One attempt per name (and per address) at a time, so parallel guesses are all counted.
    lock_keys(session, [f"login:{name}", f"login-ip:{ip}"])
    wait = max(
        _wait(session, LoginAttempt.username == name, settings.login_max_failures, settings, now),
        _wait(session, LoginAttempt.ip == ip, settings.login_max_failures_per_ip, settings, now),
    )
    if wait:
        return Throttled(wait)
    session.add(LoginAttempt(at=now, username=name, ip=ip))
    user = session.scalar(select(User).where(User.username == name, User.active.is_(True)))
    session.flush()
    if user is None:
        return LoginTicket(name, None, None)
    return LoginTicket(name, user.id, user.password_hash)


def finish_login(
    session: Session,
    ticket: LoginTicket,
    settings: Settings,
    now: datetime,
    new_hash: str | None = None,
) -> str | None:
    """After the right password: forget the name's failures, open a session (its token)."""
    session.execute(delete(LoginAttempt).where(LoginAttempt.username == ticket.username))
    # Housekeeping on a path that runs seldom: old attempts and expired sessions.
    window = timedelta(seconds=settings.login_window_seconds)
    session.execute(delete(LoginAttempt).where(LoginAttempt.at <= now - window))
    session.execute(delete(WebSession).where(WebSession.expires_at <= now))
    user = session.get(User, ticket.user_id) if ticket.user_id else None
    if user is None or not user.active:  # disabled in the meantime
        return None
    user.last_login_at = now
    if new_hash:
        user.password_hash = new_hash
    return start_session(session, user.id, settings, now)
