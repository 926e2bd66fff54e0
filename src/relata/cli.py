"""The ``relata`` command. Thin: every command calls a service and prints the result."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from relata.config import Settings, get_settings
from relata.db import Database

app = typer.Typer(help="relata: one point of truth about every customer.", no_args_is_help=True)
sources_app = typer.Typer(help="Register and list data sources.", no_args_is_help=True)
quarantine_app = typer.Typer(help="Rows that could not be imported.", no_args_is_help=True)
customers_app = typer.Typer(help="Find and show customers.", no_args_is_help=True)
export_app = typer.Typer(help="Export links and golden records as CSV.", no_args_is_help=True)
merges_app = typer.Typer(help="The merge log.", no_args_is_help=True)
app.add_typer(sources_app, name="sources")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(customers_app, name="customers")
app.add_typer(export_app, name="export")
app.add_typer(merges_app, name="merges")

out = Console()
err = Console(stderr=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON only.")]
F = TypeVar("F", bound=Callable[..., Any])


class Failure(Exception):
    """Ends a command with one line on stderr and exit code 1."""


def _expected_errors() -> tuple[type[Exception], ...]:
    from relata.identity.service import MergeError
    from relata.ingest.mapping import MappingError
    from relata.ingest.service import FileImportError
    from relata.ingest.sources import SourceError
    from relata.profiles.view import CursorError

    return (
        Failure,
        MergeError,
        MappingError,
        FileImportError,
        SourceError,
        CursorError,
    )


def _fail(message: str, code: int) -> NoReturn:
    # One line, never wrapped: scripts read it.
    sys.stderr.write("error: " + " ".join(message.split()) + "\n")
    raise typer.Exit(code) from None


def command(fn: F) -> F:
    """Turn every expected error into one line on stderr and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except _expected_errors() as exc:
            _fail(str(exc), 1)
        except OperationalError as exc:
            _fail(f"database unavailable: {exc.orig}", 2)
        except OSError as exc:
            _fail(str(exc), 1)

    return wrapper  # type: ignore[return-value]


def _settings() -> Settings:
    try:
        return get_settings()
    except ValueError as exc:
        _fail(f"invalid configuration: {exc}", 2)


@contextmanager
def _db(migrate: bool = True) -> Iterator[Database]:
    db = Database(_settings().database_url)
    try:
        if migrate:
            db.migrate()
        yield db
    finally:
        db.dispose()


@contextmanager
def _session(write: bool = True) -> Iterator[Session]:
    with _db() as db, db.session(write=write) as session:
        yield session


def _json(data: Any) -> None:
    if isinstance(data, BaseModel):
        text = data.model_dump_json(indent=2)
    else:
        text = json.dumps(data, indent=2, default=str, ensure_ascii=False)
    sys.stdout.write(text + "\n")


def _progress(total: int) -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=total < 5000,
    )


def _count_lines(path: Path) -> int:
    lines = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            lines += chunk.count(b"\n")
    return lines


@app.command()
@command
def init() -> None:
    """Create the database or bring it up to the newest schema."""
    with _db() as db:
        out.print(f"database ready: {db.engine.url.render_as_string(hide_password=True)}")


@sources_app.command("add")
@command
def sources_add(
    name: str,
    channel: Annotated[str, typer.Option(help="web, shop, pos, hotline, email, newsletter, …")],
    trust: Annotated[int, typer.Option(help="0–100; the higher, the more its fields win")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Register a source."""
    from relata.ingest.sources import add_source

    with _session() as session:
        source = add_source(session, name, channel, trust)
        data = {
            "id": source.id,
            "name": source.name,
            "channel": source.channel,
            "trust": source.trust,
        }
    if as_json:
        _json(data)
    else:
        out.print(f"source {name} added (channel {channel}, trust {trust})")


@sources_app.command("list")
@command
def sources_list(as_json: JsonOpt = False) -> None:
    """List registered sources."""
    from relata.ingest.sources import list_sources

    with _session(write=False) as session:
        rows = [
            {"id": s.id, "name": s.name, "channel": s.channel, "trust": s.trust}
            for s in list_sources(session)
        ]
    if as_json:
        _json(rows)
        return
    table = Table("name", "channel", "trust")
    for r in rows:
        table.add_row(r["name"], r["channel"], str(r["trust"]))
    out.print(table)


@app.command("import")
@command
def import_(
    file: Path,
    source: Annotated[str, typer.Option(help="name of a registered source")],
    mapping: Annotated[Path | None, typer.Option(help="TOML mapping of columns")] = None,
    events: Annotated[bool, typer.Option("--events", help="FILE is JSONL of events")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import a CSV or JSONL file of people (or, with --events, of events)."""
    from relata.events.files import import_events_file
    from relata.ingest.service import import_file

    if not file.is_file():
        raise Failure(f"no such file: {file}")
    settings = _settings()
    total = _count_lines(file)
    with _db() as db, _progress(total) as bar:
        task = bar.add_task(f"importing {file.name}", total=total)

        def advance(n: int) -> None:
            bar.advance(task, n)

        if events:
            summary: Any = import_events_file(db, file, source, settings, advance)
        else:
            summary = import_file(db, file, source, settings, mapping, advance)
    data = summary.as_dict()
    if as_json:
        _json(data)
        return
    out.print(", ".join(f"{k} {v}" for k, v in data.items()))


@quarantine_app.command("list")
@command
def quarantine_list(
    source: Annotated[str | None, typer.Option(help="only this source")] = None,
    status: Annotated[str, typer.Option(help="open, resolved or all")] = "open",
    limit: int = 100,
    as_json: JsonOpt = False,
) -> None:
    """Show quarantined rows with their reason."""
    from relata.ingest.service import list_quarantine

    if status not in ("open", "resolved", "all"):
        raise Failure(f"unknown status {status!r}; use open, resolved or all")
    with _session(write=False) as session:
        rows = [
            {
                "id": e.id,
                "source": name,
                "origin": e.origin,
                "line": e.line_no,
                "reason": e.reason,
                "raw": e.raw,
                "status": e.status,
            }
            for e, name in list_quarantine(session, source, status, limit)
        ]
    if as_json:
        _json(rows)
        return
    table = Table("id", "source", "line", "reason", "raw")
    for r in rows:
        table.add_row(str(r["id"]), r["source"], str(r["line"] or ""), r["reason"], r["raw"][:60])
    out.print(table)


@quarantine_app.command("retry")
@command
def quarantine_retry(
    source: Annotated[str | None, typer.Option(help="only this source")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run quarantined rows again, e.g. after `relata import … --mapping` fixed the mapping."""
    from relata.ingest.service import retry_quarantine

    with _db() as db:
        result = retry_quarantine(db, _settings(), source)
    data = {"resolved": result.resolved, "still_open": result.still_open, "reasons": result.reasons}
    if as_json:
        _json(data)
        return
    out.print(f"resolved {result.resolved}, still open {result.still_open}")
    for reason, n in result.reasons.items():
        out.print(f"  {n} × {reason}")


@customers_app.command("show")
@command
def customers_show(customer_id: int, page_size: int = 20, as_json: JsonOpt = False) -> None:
    """The 360° view of one customer."""
    from relata.profiles import service, view

    with _session(write=False) as session:
        customer = service.resolve(session, customer_id)
        if customer is None:
            raise Failure(f"no customer with id {customer_id}")
        if customer.status == "erased":
            raise Failure(f"customer {customer_id} was erased (Art. 17); nothing is kept")
        data = view.view(session, customer, page_size)
    if as_json:
        _json(data)
        return
    from relata.cli_render import render_view

    if customer.id != customer_id:
        out.print(f"customer {customer_id} was merged into {customer.id}")
    render_view(out, data)


@customers_app.command("search")
@command
def customers_search(query: str, limit: int = 20, as_json: JsonOpt = False) -> None:
    """Find customers by name, e-mail, phone, customer number or card."""
    from relata.profiles import view

    with _session(write=False) as session:
        found = view.search(session, query, limit)
    if as_json:
        _json([c.model_dump(mode="json") for c in found])
        return
    table = Table("id", "name", "birth date", "e-mail", "city", "customer no.")
    for c in found:
        name = " ".join(p for p in (c.first_name, c.last_name) if p)
        table.add_row(
            str(c.id),
            name,
            str(c.birth_date or ""),
            c.email or "",
            c.city or "",
            c.customer_number or "",
        )
    out.print(table)


@app.command()
@command
def unmerge(merge_id: int, as_json: JsonOpt = False) -> None:
    """Undo a merge: both customers as they were, records and events included."""
    from relata.identity.service import unmerge as undo

    with _session() as session:
        done = undo(session, merge_id, _settings())
    data = {
        "merge_id": done.merge_id,
        "restored_id": done.restored_id,
        "survivor_id": done.survivor_id,
    }
    if as_json:
        _json(data)
    else:
        restored, survivor = done.restored_id, done.survivor_id
        out.print(f"merge {merge_id} undone: customer {restored} restored beside {survivor}")


@merges_app.command("list")
@command
def merges_list(customer: int | None = None, limit: int = 50, as_json: JsonOpt = False) -> None:
    """The newest merges first."""
    from relata.identity.service import list_merges

    with _session(write=False) as session:
        rows = [
            {
                "id": m.id,
                "survivor_id": m.survivor_id,
                "merged_id": m.merged_id,
                "reason": m.reason,
                "created_at": m.created_at.isoformat(),
                "undone_at": m.undone_at.isoformat() if m.undone_at else None,
            }
            for m in list_merges(session, customer, limit)
        ]
    if as_json:
        _json(rows)
        return
    table = Table("id", "survivor", "merged", "reason", "when", "undone")
    for r in rows:
        table.add_row(
            str(r["id"]),
            str(r["survivor_id"]),
            str(r["merged_id"]),
            r["reason"],
            r["created_at"][:19],
            (r["undone_at"] or "")[:19],
        )
    out.print(table)


def _export(kind: str, path: Path) -> None:
    from relata.profiles.export import export_customers, export_links

    writer = export_links if kind == "links" else export_customers
    with _session(write=False) as session, path.open("w", newline="", encoding="utf-8") as fh:
        n = writer(session, fh)
    err.print(f"{n} rows written to {path}")


@export_app.command("links")
@command
def export_links_cmd(out_file: Annotated[Path, typer.Option("--out")]) -> None:
    """source,source_key,customer_id for every source record."""
    _export("links", out_file)


@export_app.command("customers")
@command
def export_customers_cmd(out_file: Annotated[Path, typer.Option("--out")]) -> None:
    """The golden record of every active customer."""
    _export("customers", out_file)


@app.command()
@command
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[int, typer.Option(help="server processes")] = 1,
) -> None:
    """Start the API (OpenAPI at /docs) and the web UI."""
    import uvicorn

    from relata.decisions import learner

    with _db():
        pass  # fail fast with one line if the database is unreachable or cannot migrate
    supervisor = None
    if learner.wanted(_settings()):
        # The workers (this process's environment is theirs) leave the fold to the learner.
        os.environ["RELATA_DECISION_FOLD_IN_SERVER"] = "false"
        get_settings.cache_clear()  # a single worker runs in this very process
        supervisor = learner.Supervisor()
        supervisor.start()
    out.print(
        f"relata is running: open http://{host}:{port}/ (API docs at /docs). Ctrl+C stops it.",
        soft_wrap=True,
    )
    try:
        uvicorn.run(
            "relata.api.main:app", host=host, port=port, workers=workers, log_level="warning"
        )
    finally:
        if supervisor is not None:
            supervisor.stop()


@app.command()
@command
def demo(
    people: Annotated[int, typer.Option(help="number of synthetic people")] = 20_000,
    seed: int = 42,
    directory: Annotated[Path, typer.Option("--dir", help="where the files go")] = Path(
        "demo-data"
    ),
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve")] = True,
    host: str = "127.0.0.1",
    port: int = 8000,
) -> None:
    """Generate a German demo data set with ground truth, import it, and start the server."""
    from relata.demo_run import run_demo

    run_demo(_settings(), directory, people, seed, out, err)
    if serve_after:
        serve(host=host, port=port, workers=1)


def main() -> None:  # pragma: no cover - the console script entry point
    app()


from relata.cli_matching import dedupe_app, review_app  # noqa: E402

app.add_typer(dedupe_app, name="dedupe")
app.add_typer(review_app, name="review")


from relata.cli_consent import consent_app, gdpr_app, retention_app  # noqa: E402

app.add_typer(consent_app, name="consent")
app.add_typer(gdpr_app, name="gdpr")
app.add_typer(retention_app, name="retention")


from relata.cli_auth import apikeys_app, audit_cmd, users_app  # noqa: E402

app.add_typer(users_app, name="users")
app.add_typer(apikeys_app, name="apikeys")
app.command("audit")(audit_cmd)


from relata.cli_decisions import (  # noqa: E402
    decide_command,
    decisions_app,
    offers_app,
    policies_app,
)

app.command("decide")(decide_command)
app.add_typer(offers_app, name="offers")
app.add_typer(policies_app, name="policies")
app.add_typer(decisions_app, name="decisions")


from relata.cli_segments import app as segments_app  # noqa: E402

app.add_typer(segments_app, name="segments")
