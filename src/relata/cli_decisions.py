"""``relata decide``, ``relata offers …``, ``relata policies …``, ``relata decisions …``."""

from __future__ import annotations

import functools
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.table import Table

from relata.cli import Failure, JsonOpt, _db, _json, _session, _settings, command, err, out

offers_app = typer.Typer(help="The offer catalogue: offers and activities.", no_args_is_help=True)
policies_app = typer.Typer(help="Contact policies: frequency, suppression, volume.")
decisions_app = typer.Typer(
    help="Offline evaluation, training and performance of decisions.", no_args_is_help=True
)


def _errors() -> tuple[type[Exception], ...]:
    from relata.decisions import offers, service
    from relata.decisions.catalogue import CatalogueError
    from relata.decisions.offline import LogError
    from relata.decisions.permission import ChannelError

    return (
        CatalogueError,
        ChannelError,
        LogError,
        offers.OfferNotFound,
        offers.OfferExists,
        offers.PolicyNotFound,
        service.CustomerNotFound,
        service.DecisionNotFound,
        service.ResponseError,
    )


def decisions_command(fn):  # type: ignore[no-untyped-def]
    """``command``, and the decision domain's refusals as one line and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            return fn(*args, **kwargs)
        except _errors() as exc:
            raise Failure(str(exc)) from None
        except ValidationError as exc:
            raise Failure(_first_problem(exc)) from None

    return command(wrapper)


def _first_problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "input"
    return f"{where}: {first.get('msg', 'invalid')}"


def _context(pairs: list[str], raw: str | None) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if raw:
        try:
            found = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise Failure(f"--context-json is not JSON: {exc}") from None
        if not isinstance(found, dict):
            raise Failure("--context-json must be a JSON object")
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise Failure(f"--context takes key=value, got {pair!r}")
        found[key] = value
    return found


@decisions_command
def decide_command(
    customer: Annotated[
        str, typer.Argument(help="customer id (or, with --anonymous, a visitor id)")
    ],
    channel: Annotated[
        str, typer.Option(help="web, app, email, sms, push, phone, hotline, pos, …")
    ],
    placement: Annotated[str | None, typer.Option(help="where on the channel")] = None,
    context: Annotated[
        list[str] | None, typer.Option("--context", help="key=value, repeatable")
    ] = None,
    context_json: Annotated[str | None, typer.Option(help="the context as a JSON object")] = None,
    limit: Annotated[int, typer.Option(help="how many offers")] = 1,
    anonymous: Annotated[
        bool, typer.Option("--anonymous", help="CUSTOMER is an anonymous id")
    ] = False,
    explain: Annotated[bool, typer.Option("--explain", help="every offer and why")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="decide without logging or counting anything")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Decide the next best offers for a customer on a channel, with the reasons."""
    from relata.decisions import service
    from relata.decisions.engine import Engine
    from relata.decisions.schemas import DecisionRequest

    settings = _settings()
    body: dict[str, Any] = {
        "channel": channel,
        "placement": placement,
        "context": _context(context or [], context_json),
        "limit": limit,
        "explain": True,
    }
    if anonymous:
        body["anonymous_id"] = customer
    elif customer.isdigit() and len(customer) < 19:
        body["customer_id"] = int(customer)
    else:
        raise Failure(f"customer must be a customer id, got {customer!r} (visitors: --anonymous)")
    request = DecisionRequest.model_validate(body)
    with _session() as session:
        found = service.decide(session, Engine(settings), settings, request, record=not dry_run)
    if as_json:
        data = found.model_dump(mode="json", exclude_none=True)
        if not explain:
            data.pop("considered", None)
            data.pop("learning_cells", None)
        _json(data)
        return
    _render(found, explain)


def _render(found: Any, explain: bool) -> None:
    head = f"decision {found.decision_id or '(dry run)'} for customer {found.customer_id}"
    out.print(f"{head} on {found.channel}{' (control group)' if found.control else ''}")
    if found.blocked:
        out.print(f"nothing may be offered: {found.blocked}")
    table = Table("rank", "offer", "score", "propensity", "reason")
    for o in found.offers:
        table.add_row(str(o.rank), o.key, f"{o.score:.4g}", f"{o.propensity:.3f}", o.reason)
    if found.offers:
        out.print(table)
    elif not found.blocked:
        out.print("no offer is eligible")
    if not explain:
        return
    full = Table("offer", "status", "why", "propensity", "score", "parts (log-odds)")
    for c in found.considered or []:
        parts = " ".join(f"{k} {v:+.2f}" for k, v in (c.parts or {}).items() if v)
        why = f"{c.code}: {c.detail}" if c.code else c.detail
        prop = "" if c.propensity is None else f"{c.propensity:.3f}"
        score = "" if c.score is None else f"{c.score:.4g}"
        full.add_row(c.key, c.status, why, prop, score, parts)
    out.print(full)
    out.print("learning cells: " + " → ".join(found.learning_cells or []))


# --- offers and policies ---------------------------------------------------------------------


def _offer_row(o: Any) -> list[str]:
    return [o.key, o.name, o.kind, o.status, ",".join(o.channels), f"{o.value:g}", f"{o.weight:g}"]


@offers_app.command("list")
@decisions_command
def offers_list(
    archived: Annotated[bool, typer.Option("--archived", help="include archived")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Every offer in the catalogue."""
    from relata.decisions import offers
    from relata.decisions.schemas import OfferRead

    with _session(write=False) as session:
        found = [OfferRead.model_validate(o) for o in offers.list_offers(session, archived)]
    if as_json:
        _json([o.model_dump(mode="json") for o in found])
        return
    table = Table("key", "name", "kind", "status", "channels", "value", "weight")
    for o in found:
        table.add_row(*_offer_row(o))
    out.print(table)


@offers_app.command("show")
@decisions_command
def offers_show(key: str, as_json: JsonOpt = False) -> None:
    """One offer with its versions."""
    from relata.decisions import offers
    from relata.decisions.schemas import OfferRead, VersionRead

    with _session(write=False) as session:
        offer = OfferRead.model_validate(offers.get_offer(session, key))
        versions = [VersionRead.model_validate(v) for v in offers.offer_versions(session, key)]
    if as_json:
        _json(
            {
                **offer.model_dump(mode="json"),
                "versions": [v.model_dump(mode="json") for v in versions],
            }
        )
        return
    for name, value in offer.model_dump().items():
        out.print(f"{name:>24}  {value}")
    out.print(
        "versions: "
        + ", ".join(f"{v.version} {v.change} {v.changed_at:%Y-%m-%d %H:%M}" for v in versions)
    )


@offers_app.command("import")
@decisions_command
def offers_import(file: Path, as_json: JsonOpt = False) -> None:
    """Create or update offers from a JSON file (a list of offers as the API takes them)."""
    from relata.decisions import offers
    from relata.decisions.schemas import OfferUpdate, OfferWrite

    try:
        items = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise Failure(f"{file}: not JSON ({exc})") from None
    if not isinstance(items, list):
        raise Failure(f"{file}: expected a list of offers")
    settings = _settings()
    created = updated = 0
    with _session() as session:
        for n, item in enumerate(items):
            if not isinstance(item, dict) or not item.get("key"):
                raise Failure(f"{file}: offer {n} needs a key")
            try:
                offers.get_offer(session, item["key"])
            except offers.OfferNotFound:
                offers.create_offer(session, OfferWrite.model_validate(item), settings, "cli")
                created += 1
                continue
            changes = OfferUpdate.model_validate({k: v for k, v in item.items() if k != "key"})
            offers.update_offer(session, item["key"], changes, settings, "cli")
            updated += 1
    result = {"created": created, "updated": updated}
    _json(result) if as_json else out.print(f"{created} offers created, {updated} updated")


@offers_app.command("set")
@decisions_command
def offers_set(
    key: str,
    changes: Annotated[list[str], typer.Argument(help="field=value, e.g. value=25 status=paused")],
) -> None:
    """Change fields of an offer; values are JSON where they parse (numbers, lists, null)."""
    from relata.decisions import offers
    from relata.decisions.schemas import OfferUpdate

    given: dict[str, Any] = {}
    for pair in changes:
        name, sep, raw = pair.partition("=")
        if not sep:
            raise Failure(f"changes are field=value, got {pair!r}")
        try:
            given[name] = json.loads(raw)
        except json.JSONDecodeError:
            given[name] = raw
    with _session() as session:
        offer = offers.update_offer(
            session, key, OfferUpdate.model_validate(given), _settings(), "cli"
        )
        version = offer.version
    out.print(f"offer {key} is now version {version}")


@offers_app.command("archive")
@decisions_command
def offers_archive(key: str) -> None:
    """Take an offer out of the catalogue (decisions keep pointing at it)."""
    from relata.decisions import offers

    with _session() as session:
        offers.archive_offer(session, key, _settings(), "cli")
    out.print(f"offer {key} archived")


@policies_app.command("list")
@decisions_command
def policies_list(as_json: JsonOpt = False) -> None:
    """Every contact policy."""
    from relata.decisions import offers
    from relata.decisions.schemas import PolicyRead

    with _session(write=False) as session:
        found = [PolicyRead.model_validate(p) for p in offers.list_policies(session)]
    if as_json:
        _json([p.model_dump(mode="json") for p in found])
        return
    table = Table("name", "kind", "channels", "max", "days", "rule", "active")
    for p in found:
        table.add_row(
            p.name,
            p.kind,
            ",".join(p.channels) or "all",
            str(p.max_count or ""),
            str(p.window_days or ""),
            p.rule or "",
            "yes" if p.active else "no",
        )
    out.print(table)


@policies_app.command("add")
@decisions_command
def policies_add(
    name: str,
    kind: Annotated[str, typer.Option(help="frequency, suppress or volume")],
    channel: Annotated[
        list[str] | None, typer.Option("--channel", help="repeatable; none: all")
    ] = None,
    max_count: Annotated[int | None, typer.Option("--max", help="contacts allowed")] = None,
    days: Annotated[int | None, typer.Option(help="window of a frequency policy")] = None,
    rule: Annotated[str | None, typer.Option(help="whom it applies to (rule language)")] = None,
) -> None:
    """Add a contact policy, e.g. --kind frequency --channel email --max 1 --days 7."""
    from relata.decisions import offers
    from relata.decisions.schemas import PolicyWrite

    data = PolicyWrite.model_validate(
        {
            "name": name,
            "kind": kind,
            "channels": channel or [],
            "max_count": max_count,
            "window_days": days,
            "rule": rule,
        }
    )
    with _session() as session:
        offers.create_policy(session, data, _settings(), "cli")
    out.print(f"contact policy {name} added")


# --- evaluation, training, performance -------------------------------------------------------


@decisions_app.command("evaluate")
@decisions_command
def evaluate_cmd(
    log: Path,
    train_fraction: Annotated[float, typer.Option(help="the first part relata learns from")] = 0.5,
    clip_propensity: Annotated[
        float | None, typer.Option(help="raise propensities below this to it (else refused)")
    ] = None,
    max_weight: Annotated[float | None, typer.Option(help="clip importance weights")] = None,
    features: Annotated[str | None, typer.Option(help="context keys to learn by, a,b,c")] = None,
    depth: Annotated[int, typer.Option(help="how many of them")] = 3,
    policy: Annotated[str, typer.Option(help="thompson or greedy")] = "thompson",
    samples: Annotated[int, typer.Option(help="Thompson draws per context")] = 500,
    seed: int = 0,
    as_json: JsonOpt = False,
) -> None:
    """Estimate relata's policy on a logged history (JSONL) with IPS, SNIPS and DR."""
    from relata.decisions.offline import Options, evaluate

    if not log.is_file():
        raise Failure(f"no such file: {log}")
    options = Options(
        train_fraction=train_fraction,
        clip=clip_propensity,
        max_weight=max_weight,
        features=[f.strip() for f in features.split(",") if f.strip()] if features else None,
        depth=depth,
        policy=policy,
        samples=max(samples, 1),
        seed=seed,
    )
    started = time.perf_counter()
    report = evaluate(log, options)
    report["seconds"] = round(time.perf_counter() - started, 2)
    if as_json:
        _json(report)
        return
    out.print(
        f"{report['train_rows'] + report['test_rows']} logged decisions: relata learned from "
        f"{report['train_rows']}, estimates on {report['test_rows']}; {report['actions']} actions; "
        f"learning cells {', '.join(report['learning_cells']) or '(none)'}"
    )
    if report["propensities_clipped"]:
        out.print(
            f"{report['propensities_clipped']} propensities clipped to {report['clip_propensity']}"
        )
    table = Table("policy", "estimator", "value", "95 % interval")
    rows = [
        ("logging policy", "observed mean", report["logging_policy"]),
        (f"relata ({report['policy']})", "IPS", report["ips"]),
        ("", "SNIPS", report["snips"]),
        ("", "DR", report["dr"]),
        ("", "direct (model only)", report["direct_method"]),
    ]
    for who, name, e in rows:
        if e is not None:
            table.add_row(who, name, f"{e['value']:.5f}", f"[{e['low']:.5f}, {e['high']:.5f}]")
    out.print(table)
    out.print(
        f"effective sample size {report['effective_sample_size']:.0f} of {report['test_rows']}; "
        f"{report['clipped_weights']} weights clipped"
    )


@decisions_app.command("train")
@decisions_command
def train_cmd(
    days: Annotated[int, typer.Option(help="logged shows of the last days fit the weights")] = 90,
    every: Annotated[float | None, typer.Option(help="keep running: train every HOURS")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fold responses, train the collaborative model and fit the score weights."""
    from relata.decisions.training import train

    settings = _settings()
    while True:
        with _db() as db, db.session() as session:
            result = train(session, settings, days)
        if as_json:
            _json(result)
        else:
            w = ", ".join(f"{k} {v:+.3f}" for k, v in result["weights"].items())
            out.print(
                f"model {result['model_id']}: {result['customers']} customers, "
                f"{result['items']} items, {result['shows']} shows / {result['wins']} wins; "
                f"weights {'fitted' if result['weights_fitted'] else 'kept'}: {w}"
            )
        if every is None:
            return
        err.print(f"next training in {every:g} h ({datetime.now():%H:%M})")
        time.sleep(every * 3600)


@decisions_app.command("learn")
@decisions_command
def learn_cmd(
    once: Annotated[bool, typer.Option(help="fold what is waiting, then stop")] = False,
    parent: Annotated[int | None, typer.Option(hidden=True)] = None,
    nice: Annotated[int, typer.Option(help="how much lower the CPU priority")] = 10,
) -> None:
    """Fold responses into the shared counts, every RELATA_DECISION_FOLD_SECONDS until
    stopped: the learner beside API processes that do not fold themselves
    (RELATA_DECISION_FOLD_IN_SERVER=false; `relata serve` on PostgreSQL starts one)."""
    from relata.decisions import learner

    settings = _settings()
    with _db() as db:
        if once:
            out.print(f"{learner.fold_all(db, settings):,} outcomes folded")
            return
        learner.lower_priority(nice)
        learner.run(db, settings, learner.until_signalled(), learner.parent_alive(parent))


@decisions_app.command("performance")
@decisions_command
def performance_cmd(days: int = 30, as_json: JsonOpt = False) -> None:
    """Impressions, accept rate and uplift over the control group, per offer."""
    from relata.decisions import reports

    with _session(write=False) as session:
        found = reports.performance(session, days)
    if as_json:
        _json([f.model_dump(mode="json") for f in found])
        return

    def rate(i: Any) -> str:
        return "" if i.estimate is None else f"{i.estimate:.3f} [{i.low:.3f}, {i.high:.3f}]"

    table = Table("offer", "impressions", "accept rate", "control", "control rate", "uplift")
    for f in found:
        table.add_row(
            f.key,
            str(f.impressions),
            rate(f.accept_rate),
            str(f.control_impressions),
            rate(f.control_rate),
            rate(f.uplift),
        )
    out.print(table)


@decisions_app.command("show")
@decisions_command
def show_cmd(decision_id: str) -> None:
    """A logged decision with its responses (JSON)."""
    from relata.decisions import reports

    with _session(write=False) as session:
        _json(reports.decision(session, decision_id))
