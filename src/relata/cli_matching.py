"""`relata dedupe` (train, run, explain) and `relata review` (list, accept, reject)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any, TypeVar

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TimeElapsedColumn,
)
from rich.table import Table

from relata.cli import Failure, JsonOpt, _db, _json, _session, _settings, command, err, out

dedupe_app = typer.Typer(
    help="Probabilistic duplicate matching (Splink).", invoke_without_command=True
)
review_app = typer.Typer(
    help="Pairs that may be one person, for you to decide.", no_args_is_help=True
)
F = TypeVar("F", bound=Callable[..., Any])


def _matching_errors() -> tuple[type[Exception], ...]:
    from relata.identity.matching.engine import EngineError
    from relata.identity.matching.scoring import ModelMismatch
    from relata.identity.matching.store import NoModel, UnknownCustomer
    from relata.identity.review import ReviewError

    return (EngineError, ModelMismatch, NoModel, UnknownCustomer, ReviewError)


def matching_command(fn: F) -> F:
    """`command`, knowing matching's expected errors too."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except _matching_errors() as exc:
            raise Failure(str(exc)) from None

    return command(wrapper)  # type: ignore[return-value]


class RichProgress:
    """Each step of a run as a line with a spinner, or a bar where the size is known."""

    def __init__(self) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
        )
        self.current: TaskID | None = None
        self.started = False

    def __enter__(self) -> RichProgress:
        # The display starts with the first step, so an error before it (no model yet)
        # is one line on stderr and nothing else.
        self.started = False
        return self

    def __exit__(self, *exc: object) -> None:
        if self.started:
            self._finish()
            self.progress.__exit__(*exc)

    def _finish(self) -> None:
        if self.current is not None:
            task = self.progress.tasks[-1]
            self.progress.update(self.current, total=task.total or 1, completed=task.total or 1)

    def step(self, name: str, total: int | None = None) -> Callable[[int], None]:
        if not self.started:
            self.progress.__enter__()
            self.started = True
        self._finish()
        task = self.progress.add_task(name, total=total)
        self.current = task
        return lambda n: self.progress.advance(task, n)

    def note(self, text: str) -> None:
        self.progress.console.print(text)


def _seconds(seconds: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items())


@dedupe_app.callback()
@matching_command
def dedupe(
    ctx: typer.Context,
    explain: Annotated[
        tuple[int, int] | None,
        typer.Option("--explain", metavar="A B", help="show the match weights of two customers"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Find duplicates with the trained model: merge, queue for review, or drop each pair."""
    if ctx.invoked_subcommand is not None:
        return
    from relata.identity.matching import batch

    settings = _settings()
    if explain is not None:
        with _db() as db:
            weight, steps = batch.explain_pair(db, *explain)
        _explain_out(explain, weight, steps, as_json)
        return
    with _db() as db, RichProgress() as progress:
        summary = batch.dedupe(db, settings, progress)
    if as_json:
        _json(summary.as_dict())
        return
    out.print(
        f"compared {summary.compared:,} record pairs of {summary.rows:,} rows "
        f"(model v{summary.model_version}); {summary.candidates:,} customer pairs scored "
        f"≥ {settings.match_review_weight}: merged {summary.merged:,} customers in "
        f"{summary.clusters:,} groups, {summary.held_back:,} links held back by the chaining "
        f"guard, {summary.queued:,} pairs open for review",
        soft_wrap=True,
    )
    out.print(f"time: {_seconds(summary.seconds)}", soft_wrap=True)


def _explain_out(pair: tuple[int, int], weight: float, steps: list[Any], as_json: bool) -> None:
    from relata.identity.matching.scoring import probability

    if as_json:
        _json(
            {
                "customers": list(pair),
                "match_weight": weight,
                "match_probability": probability(weight),
                "steps": [asdict(s) for s in steps],
            }
        )
        return
    table = Table("comparison", "level", str(pair[0]), str(pair[1]), "weight", "running")
    running = 0.0
    for s in steps:
        w = s.weight + s.tf_adjustment
        running += w
        bar = ("█" * min(20, round(abs(w)))) or "·"
        colour = "green" if w > 0 else "red" if w < 0 else "dim"
        tf = f" (tf {s.tf_adjustment:+.1f})" if s.tf_adjustment else ""
        table.add_row(
            s.title,
            s.level,
            s.left,
            s.right,
            f"[{colour}]{w:+.2f}{tf} {bar}[/]",
            f"{running:+.2f}",
        )
    out.print(table)
    out.print(f"match weight {weight:+.2f}, probability {probability(weight):.4f}")


@dedupe_app.command("train")
@matching_command
def train(as_json: JsonOpt = False) -> None:
    """Train the model (u by random sampling, m by EM) and store it as the next version."""
    from relata.identity.matching import batch

    settings = _settings()
    with _db() as db, RichProgress() as progress:
        summary = batch.train(db, settings, progress)
    if as_json:
        _json(summary.as_dict())
        return
    out.print(
        f"model v{summary.version} trained on {summary.rows:,} rows; {_seconds(summary.seconds)}"
    )
    if summary.untrained_levels:
        out.print("levels the data never showed (weight 0): " + "; ".join(summary.untrained_levels))


def _review_row(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "customer_a_id": r.customer_a_id,
        "customer_b_id": r.customer_b_id,
        "match_weight": round(r.match_weight, 3),
        "match_probability": r.match_probability,
        "status": r.status,
        "model_version": r.model_version,
        "merge_id": r.merge_id,
        "created_at": r.created_at.isoformat(),
        "decided_at": r.decided_at.isoformat() if r.decided_at else None,
    }


@review_app.command("list")
@matching_command
def review_list(
    status: Annotated[str, typer.Option(help="open, accepted, rejected or stale")] = "open",
    limit: int = 50,
    as_json: JsonOpt = False,
) -> None:
    """Pairs in the review queue, oldest first."""
    from relata.identity import review

    if limit < 1:
        raise Failure("--limit must be at least 1")
    with _session(write=False) as session:
        rows = [_review_row(r) for r in review.list_reviews(session, status, limit)]
    if as_json:
        _json(rows)
        return
    table = Table("id", "customer A", "customer B", "weight", "probability", "status")
    for r in rows:
        table.add_row(
            str(r["id"]),
            str(r["customer_a_id"]),
            str(r["customer_b_id"]),
            f"{r['match_weight']:+.1f}",
            f"{r['match_probability']:.3f}",
            r["status"],
        )
    out.print(table)


@review_app.command("accept")
@matching_command
def review_accept(review_id: int, as_json: JsonOpt = False) -> None:
    """Merge the pair (through the merge log: `relata unmerge` undoes it)."""
    from relata.identity import review

    with _session() as session:
        row = _review_row(review.accept(session, review_id, _settings()))
    if as_json:
        _json(row)
    else:
        merged = f" as merge {row['merge_id']}" if row["merge_id"] else ""
        out.print(f"review {review_id} accepted: customers merged{merged}")


@review_app.command("reject")
@matching_command
def review_reject(review_id: int, as_json: JsonOpt = False) -> None:
    """Two different people: never proposed or merged again."""
    from relata.identity import review

    with _session() as session:
        row = _review_row(review.reject(session, review_id))
    if as_json:
        _json(row)
    else:
        out.print(f"review {review_id} rejected: the two stay apart from now on")
