"""``relata segments …``: define, check, count, export and refresh segments. Thin: every
command calls ``relata.segments.service`` and prints the result."""

from __future__ import annotations

import csv
import functools
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from relata.cli import Failure, JsonOpt, _json, _session, command, err, out

app = typer.Typer(help="Segments: named rules over customers.", no_args_is_help=True)

RuleOpt = Annotated[
    str | None,
    typer.Option("--rule", help="the rule as text, e.g. 'gender = \"f\" and age > 30'"),
]
JsonRuleOpt = Annotated[
    Path | None,
    typer.Option("--rule-json", help="a file with the rule's JSON form ('-': standard input)"),
]
DescriptionOpt = Annotated[str | None, typer.Option(help="what the segment is for")]


def segments_command(fn):  # type: ignore[no-untyped-def]
    """``command``, with a refused rule or segment as one line on stderr and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from relata.segments.rules import RuleError
        from relata.segments.service import SegmentError

        try:
            return fn(*args, **kwargs)
        except (RuleError, SegmentError) as exc:
            raise Failure(str(exc)) from None

    return command(wrapper)


def _rule(session: Any, text: str | None, json_file: Path | None, required: bool = True) -> Any:
    from relata.segments import service

    if text is None and json_file is None:
        if required:
            raise Failure("give the rule with --rule '…' or --rule-json FILE")
        return None
    data = None
    if json_file is not None:
        raw = typer.get_text_stream("stdin").read() if str(json_file) == "-" else None
        try:
            data = json.loads(raw if raw is not None else json_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise Failure(f"{json_file}: not JSON: {exc}") from None
    return service.read_rule(session, text, data)


def _info(info: Any) -> dict[str, Any]:
    return {
        "name": info.name,
        "description": info.description,
        "version": info.version,
        "rule": info.text,
        "rule_json": info.rule,
        "members": info.members,
        "created_at": info.created_at.isoformat(),
        "updated_at": info.updated_at.isoformat(),
        "refreshed_at": info.refreshed_at.isoformat() if info.refreshed_at else None,
    }


def _show(info: Any, as_json: bool) -> None:
    if as_json:
        _json(_info(info))
    else:
        _print(info)


def _print(info: Any) -> None:
    out.print(f"[bold]{info.name}[/bold] (version {info.version}, {info.members} members)")
    if info.description:
        out.print(info.description)
    out.print(info.text, markup=False, soft_wrap=True)


@app.command("create")
@segments_command
def create(
    name: str,
    rule: RuleOpt = None,
    rule_json: JsonRuleOpt = None,
    description: DescriptionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Save a new segment (its rule is checked first)."""
    from relata.segments import service

    with _session() as session:
        info = service.create(session, name, _rule(session, rule, rule_json), description or "")
    _show(info, as_json)


@app.command("edit")
@segments_command
def edit(
    name: str,
    rule: RuleOpt = None,
    rule_json: JsonRuleOpt = None,
    description: DescriptionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a segment's rule or description: a new version."""
    from relata.segments import service

    with _session() as session:
        node = _rule(session, rule, rule_json, required=False)
        if node is None and description is None:
            raise Failure("nothing to change: give --rule, --rule-json or --description")
        info = service.update(session, name, node, description)
    _show(info, as_json)


@app.command("show")
@segments_command
def show(name: str, as_json: JsonOpt = False) -> None:
    """A segment's current rule, in text and JSON."""
    from relata.segments import service

    with _session(write=False) as session:
        info = service.get(session, name)
    _show(info, as_json)


@app.command("list")
@segments_command
def list_(as_json: JsonOpt = False) -> None:
    """Every segment with its version and members."""
    from relata.segments import service

    with _session(write=False) as session:
        found = service.list_segments(session)
    if as_json:
        _json([_info(i) for i in found])
        return
    table = Table("name", "version", "members", "rule")
    for info in found:
        table.add_row(info.name, str(info.version), str(info.members), info.text)
    out.print(table)


@app.command("versions")
@segments_command
def versions(name: str, as_json: JsonOpt = False) -> None:
    """Every version of a segment's rule, newest first."""
    from relata.segments import service

    with _session(write=False) as session:
        found = service.versions(session, name)
    rows = [
        {"version": v.version, "rule": v.text, "description": v.description,
         "created_at": v.created_at.isoformat()}
        for v in found
    ]  # fmt: skip
    if as_json:
        _json(rows)
        return
    table = Table("version", "saved", "rule")
    for r in rows:
        table.add_row(str(r["version"]), r["created_at"][:19], r["rule"])
    out.print(table)


@app.command("delete")
@segments_command
def delete(name: str) -> None:
    """Delete a segment, its versions and memberships (timeline events stay)."""
    from relata.segments import service

    with _session() as session:
        service.delete_segment(session, name)
    out.print(f"segment {name} deleted")


@app.command("check")
@segments_command
def check(rule: RuleOpt = None, rule_json: JsonRuleOpt = None, as_json: JsonOpt = False) -> None:
    """Check a rule without saving it: its canonical text and JSON form."""
    from relata.segments.rules import to_json, to_text

    with _session(write=False) as session:
        node = _rule(session, rule, rule_json)
    if as_json:
        _json({"rule": to_text(node), "rule_json": to_json(node)})
        return
    out.print(to_text(node), markup=False, soft_wrap=True)
    out.print(json.dumps(to_json(node), ensure_ascii=False), markup=False, soft_wrap=True)


@app.command("count")
@segments_command
def count(
    name: Annotated[str | None, typer.Argument()] = None,
    rule: RuleOpt = None,
    rule_json: JsonRuleOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """How many customers a segment (or, with --rule, an unsaved rule) selects now."""
    from relata.segments import service

    if (name is None) == (rule is None and rule_json is None):
        raise Failure("give a segment NAME or a --rule, not both")
    with _session(write=False) as session:
        if name is not None:
            n = service.count_segment(session, name)
        else:
            n = service.count(session, _rule(session, rule, rule_json))
    if as_json:
        _json({"count": n})
    else:
        out.print(str(n))


@app.command("members")
@segments_command
def members(
    name: str,
    out_file: Annotated[Path, typer.Option("--out", help="the CSV file to write")],
) -> None:
    """Write the segment's members as of now to a CSV file (customer_id, names, …)."""
    from relata.segments import service

    written = 0
    with _session(write=False) as session:
        service.get(session, name)  # an unknown segment leaves no empty file behind
        with out_file.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, ["customer_id", *service.MEMBER_COLUMNS])
            writer.writeheader()
            for row in service.member_rows(session, name):
                writer.writerow(row)
                written += 1
    err.print(f"{written} members written to {out_file}")


PERIOD = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_every(text: str) -> int:
    """Seconds in a period such as ``90s``, ``30m``, ``24h`` or ``1d``; Failure if not."""
    number, unit = text[:-1], text[-1:].lower()
    if unit not in PERIOD or not number.isdigit() or int(number) == 0:
        raise Failure(f"--every {text!r}: give a period like 30m, 24h or 1d")
    return int(number) * PERIOD[unit]


@app.command("refresh")
@segments_command
def refresh(
    names: Annotated[list[str] | None, typer.Argument(help="segments (default: all)")] = None,
    every: Annotated[
        str | None, typer.Option(help="repeat every period (24h, 30m, 1d) until stopped")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Materialise membership for every customer: entries and exits become timeline events."""
    import time

    from relata.segments import service

    seconds = parse_every(every) if every else None
    while True:
        with _session() as session:
            done = service.refresh(session, names or None)
        rows = [
            {"segment": r.segment, "members": r.members, "entered": r.entered, "left": r.left}
            for r in done
        ]
        if as_json:
            _json(rows)
        else:
            for r in rows:
                out.print(f"{r['segment']}: {r['members']} members, +{r['entered']} −{r['left']}")
        if seconds is None:
            return
        err.print(f"next refresh in {every}")
        time.sleep(seconds)
