"""``relata consent …``, ``relata gdpr …`` and ``relata retention run``. Thin, like cli.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from relata.cli import Failure, JsonOpt, _db, _json, _session, _settings, command, err, out

consent_app = typer.Typer(help="Consent per purpose and channel.", no_args_is_help=True)
gdpr_app = typer.Typer(
    help="Data subjects' rights: access (Art. 15), erasure (Art. 17).", no_args_is_help=True
)
retention_app = typer.Typer(
    help="Delete events older than their retention period.", no_args_is_help=True
)

PurposeOpt = Annotated[str, typer.Option(help="a configured purpose, e.g. marketing")]
ChannelOpt = Annotated[str, typer.Option(help="email, sms, phone, post, web or push")]


def _errors() -> tuple[type[Exception], ...]:
    from relata.consent.errors import ConsentError, SecretMismatch

    return ConsentError, SecretMismatch


def consent_command(fn):  # type: ignore[no-untyped-def]
    """``command``, and the consent domain's refusals as one line and exit code 1."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            return fn(*args, **kwargs)
        except _errors() as exc:
            raise Failure(str(exc)) from None

    return command(wrapper)


def _permission_rows(session, customer_id: int) -> list[dict]:  # type: ignore[no-untyped-def]
    from relata.consent import service

    return [
        {"purpose": p, "channel": c, "status": state.status, "since": state.since}
        for p, c, state in service.matrix(session, customer_id, _settings())
    ]


@consent_app.command("show")
@consent_command
def consent_show(customer_id: int, as_json: JsonOpt = False) -> None:
    """The current state of every purpose × channel, and the ledger."""
    from relata.consent import service
    from relata.consent.schemas import ConsentEntryRead

    with _session(write=False) as session:
        cid = service.active_customer(session, customer_id).id
        data = {
            "customer_id": cid,
            "permissions": _permission_rows(session, cid),
            "ledger": [
                ConsentEntryRead.model_validate(e).model_dump(mode="json")
                for e in service.entries(session, cid)
            ],
        }
    if as_json:
        _json(data)
        return
    table = Table("purpose", "channel", "status", "since")
    for p in data["permissions"]:
        if p["status"] != "unknown":
            since = p["since"].isoformat()[:19] if p["since"] else ""
            table.add_row(p["purpose"], p["channel"], p["status"], since)
    out.print(table if table.row_count else f"customer {cid}: no consent recorded")


def _record(customer_id: int, purpose: str, channel: str, action: str, **kw: object) -> dict:
    from relata.consent import service

    with _session() as session:
        entry = service.record(
            session, _settings(), customer_id, purpose, channel, action, via="cli", **kw
        )
        return {"id": entry.id, "customer_id": entry.customer_id, "action": action}


@consent_app.command("grant")
@consent_command
def consent_grant(
    customer_id: int,
    purpose: PurposeOpt,
    channel: ChannelOpt,
    version: Annotated[str | None, typer.Option(help="the text or version agreed to")] = None,
    form: Annotated[str | None, typer.Option(help="where it was given, e.g. 'phone call'")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record that the customer agreed to a purpose on a channel."""
    data = _record(
        customer_id, purpose, channel, "grant", text_version=version, evidence={"form": form}
    )
    if as_json:
        _json(data)
    else:
        out.print(f"granted {purpose} on {channel} (entry {data['id']})")


@consent_app.command("revoke")
@consent_command
def consent_revoke(
    customer_id: int,
    purpose: PurposeOpt,
    channel: ChannelOpt,
    form: Annotated[str | None, typer.Option(help="how it was withdrawn")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record that the customer withdrew a purpose on a channel."""
    data = _record(customer_id, purpose, channel, "revoke", evidence={"form": form})
    if as_json:
        _json(data)
    else:
        out.print(f"revoked {purpose} on {channel} (entry {data['id']})")


@consent_app.command("check")
@consent_command
def consent_check(
    customer_id: int, purpose: PurposeOpt, channel: ChannelOpt, as_json: JsonOpt = False
) -> None:
    """May relata use PURPOSE on CHANNEL for the customer now? Prints allowed or denied."""
    from relata.consent import service

    with _session(write=False) as session:
        service.active_customer(session, customer_id)
        state = service.state_of(session, customer_id, purpose, channel, _settings())
    if as_json:
        _json({"allowed": state.allowed, "status": state.status})
    else:
        out.print(f"{'allowed' if state.allowed else 'denied'} ({state.status})")


@consent_app.command("opt-in")
@consent_command
def consent_opt_in(
    customer_id: int,
    purpose: PurposeOpt = "marketing",
    channel: ChannelOpt = "email",
    version: Annotated[str | None, typer.Option(help="the text or version agreed to")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Start a double opt-in: prints the confirmation link's path, to send to the customer."""
    from relata.consent import service

    with _session() as session:
        done = service.request_opt_in(
            session, _settings(), customer_id, purpose, channel, via="cli", text_version=version
        )
        data = {
            "entry_id": done.entry.id,
            "confirm_path": f"/c/confirm/{done.token}",
            "expires_at": done.expires_at.isoformat(),
        }
    if as_json:
        _json(data)
    else:
        out.print(data["confirm_path"], soft_wrap=True)


@gdpr_app.command("export")
@consent_command
def gdpr_export(
    customer_id: int,
    out_file: Annotated[Path | None, typer.Option("--out", help="write here, not stdout")] = None,
) -> None:
    """Art. 15: everything held about the person, as one JSON document."""
    import json

    from relata.consent.gdpr import export

    with _session(write=False) as session:
        document = export(session, customer_id, _settings())
    if out_file is None:
        _json(document)
        return
    out_file.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", "utf-8")
    err.print(f"customer {document['customer_id']} exported to {out_file}")


@gdpr_app.command("erase")
@consent_command
def gdpr_erase(
    customer_id: int,
    yes: Annotated[
        bool, typer.Option("--yes", help="do not ask; erasure cannot be undone")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Art. 17: erase the person everywhere, in one transaction, keeping only hashed tombstones."""
    from relata.consent.erasure import erase

    if not yes and not typer.confirm(
        f"Erase customer {customer_id} irreversibly?", default=False, err=True
    ):
        raise Failure("not erased: confirm with --yes")
    with _session() as session:
        report = erase(session, customer_id, _settings()).as_dict()
    if as_json:
        _json(report)
        return
    counts = ", ".join(
        f"{k} {v}" for k, v in report.items() if k not in ("customer_id", "merged_ids")
    )
    out.print(f"customer {report['customer_id']} erased: {counts}", soft_wrap=True)


@retention_app.command("run")
@consent_command
def retention_run(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count only")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete events older than RELATA_RETENTION_DAYS allows; prints counts per rule."""
    from relata.consent.retention import run

    settings = _settings()
    with _db() as db:
        report = run(db, settings.retention_days, dry_run=dry_run).as_dict()
    if as_json:
        _json(report)
        return
    if not settings.retention_days:
        out.print("no retention periods configured (RELATA_RETENTION_DAYS); nothing deleted")
        return
    verb = "would delete" if dry_run else "deleted"
    for rule, n in report["deleted"].items():
        out.print(f"{rule}: {verb} {n} (older than {report['cutoffs'][rule][:10]})")
