"""``relata users``, ``relata apikeys`` and ``relata audit``: thin, like the rest of the CLI.

Passwords are read from a hidden prompt or from stdin (``--password-stdin``), never from
the command line, where ``ps`` and the shell history would keep them.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table

from relata.auth import audit, service
from relata.auth.permissions import ROLES
from relata.cli import Failure, JsonOpt, _json, _session, command, err, out
from relata.db import utcnow

users_app = typer.Typer(help="Users of the web UI and their roles.", no_args_is_help=True)
apikeys_app = typer.Typer(help="API keys for integrations.", no_args_is_help=True)
F = TypeVar("F", bound=Callable[..., Any])
ROLE_HELP = ", ".join(ROLES)


def auth_command(fn: F) -> F:
    """``command``, and the access-control errors as one line on stderr too."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except service.AuthError as exc:
            raise Failure(str(exc)) from None

    return command(wrapper)  # type: ignore[return-value]


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise Failure("no terminal to ask for the password: pipe it in with --password-stdin")
    return typer.prompt("password", hide_input=True, confirmation_prompt=True)


def _user_row(u: service.UserInfo) -> dict[str, Any]:
    data = asdict(u)
    data.pop("id")
    return data


PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="read the password from the first line of stdin")
]


@users_app.command("add")
@auth_command
def users_add(
    username: str,
    role: Annotated[str, typer.Option(help=ROLE_HELP)],
    password_stdin: PasswordStdin = False,
    as_json: JsonOpt = False,
) -> None:
    """Add a user who signs in to the web UI."""
    password = _password(password_stdin)
    with _session() as session:
        user = service.add_user(session, username, role, password)
    if as_json:
        _json(_user_row(user))
    else:
        out.print(f"user {user.username} added with role {user.role}")


@users_app.command("list")
@auth_command
def users_list(as_json: JsonOpt = False) -> None:
    """Users, their roles, and when they last signed in."""
    with _session(write=False) as session:
        users = service.list_users(session)
    if as_json:
        _json([_user_row(u) for u in users])
        return
    table = Table("user", "role", "active", "last sign-in")
    for u in users:
        last = u.last_login_at.isoformat()[:19] if u.last_login_at else ""
        table.add_row(u.username, u.role, "yes" if u.active else "no", last)
    out.print(table)


@users_app.command("disable")
@auth_command
def users_disable(username: str) -> None:
    """The user can no longer sign in; their open sessions end now."""
    with _session() as session:
        user = service.disable_user(session, username)
    out.print(f"user {user.username} disabled")


@users_app.command("password")
@auth_command
def users_password(username: str, password_stdin: PasswordStdin = False) -> None:
    """Set a new password (and enable the user again); their open sessions end."""
    password = _password(password_stdin)
    with _session() as session:
        user = service.set_password(session, username, password)
    out.print(f"password of {user.username} set")


def _key_row(k: service.ApiKeyInfo) -> dict[str, Any]:
    data = asdict(k)
    data.pop("id")
    return data


@apikeys_app.command("create")
@auth_command
def apikeys_create(
    name: str,
    scope: Annotated[
        list[str] | None,
        typer.Option(help="a permission, e.g. events:ingest (repeatable)"),
    ] = None,
    role: Annotated[str | None, typer.Option(help=f"every permission of: {ROLE_HELP}")] = None,
    expires_days: Annotated[int | None, typer.Option(help="valid this many days")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a key; it is printed this once and stored only as a hash."""
    scopes = [*(scope or []), *([role] if role else [])]
    with _session() as session:
        info, key = service.create_api_key(session, name, scopes, utcnow(), expires_days)
    if as_json:
        _json({**_key_row(info), "key": key})
        return
    out.print(f"API key {info.name} created with scopes {', '.join(info.scopes)}")
    err.print("the key is shown this once; store it now:")
    sys.stdout.write(key + "\n")


@apikeys_app.command("list")
@auth_command
def apikeys_list(as_json: JsonOpt = False) -> None:
    """Keys by name, with the first characters of each to recognise it (never the key)."""
    with _session(write=False) as session:
        keys = service.list_api_keys(session)
    if as_json:
        _json([_key_row(k) for k in keys])
        return
    table = Table("name", "starts with", "scopes", "expires", "revoked")
    for k in keys:
        expires = k.expires_at.isoformat()[:10] if k.expires_at else ""
        revoked = k.revoked_at.isoformat()[:19] if k.revoked_at else ""
        table.add_row(k.name, k.prefix + "…", " ".join(k.scopes), expires, revoked)
    out.print(table)


@apikeys_app.command("revoke")
@auth_command
def apikeys_revoke(name: str) -> None:
    """The key stops working at once, in every server process."""
    with _session() as session:
        service.revoke_api_key(session, name, utcnow())
    out.print(f"API key {name} revoked")


@auth_command
def audit_cmd(
    customer: Annotated[int | None, typer.Option(help="only entries about this customer")] = None,
    limit: Annotated[int, typer.Option(help="at most this many, newest first")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Who read or changed whose data, when, through which route."""
    if customer is not None and not 0 < customer <= 2**63 - 1:
        raise Failure(f"invalid customer id {customer}")
    if not 0 < limit <= audit.MAX_LIMIT:
        raise Failure(f"--limit must be between 1 and {audit.MAX_LIMIT}")
    with _session(write=False) as session:
        rows = audit.entries(session, customer, limit)
    if as_json:
        _json([r.as_dict() for r in rows])
        return
    table = Table("when", "who", "action", "route", "customer", "status")
    for r in rows:
        table.add_row(
            r.at.isoformat()[:19],
            f"{r.actor_name} ({r.actor_kind})",
            r.action,
            f"{r.method} {r.route}",
            str(r.customer_id or ""),
            str(r.status),
        )
    out.print(table)
