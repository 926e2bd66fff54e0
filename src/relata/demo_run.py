"""`relata demo`: generate the German demo data set and import it like a user would."""

from __future__ import annotations

import os
import time
from pathlib import Path

from rich.console import Console
from sqlalchemy.orm import Session

from relata.auth.permissions import ROLES
from relata.auth.service import AlreadyExists, add_user, set_password
from relata.config import Settings, get_settings
from relata.db import Database
from relata.events.files import import_events_file
from relata.ingest.service import import_file
from relata.ingest.sources import add_source, get_source


def run_demo(
    settings: Settings, directory: Path, people: int, seed: int, out: Console, err: Console
) -> None:
    from relata.demo.generator import generate

    started = time.perf_counter()
    err.print(f"generating {people:,} synthetic people into {directory}/ (seed {seed}) …")
    manifest = generate(directory, people=people, seed=seed)
    db = Database(settings.database_url)
    try:
        db.migrate()
        with db.session() as session:
            for src in manifest.sources:
                if get_source(session, src.name) is None:
                    add_source(session, src.name, src.channel, src.trust)
        for src in manifest.sources:
            path = directory / src.file
            with err.status(f"importing {src.file} into source {src.name} …"):
                if src.kind == "events":
                    summary = import_events_file(db, path, src.name, settings).as_dict()
                else:
                    mapping = directory / src.mapping if src.mapping else None
                    summary = import_file(db, path, src.name, settings, mapping).as_dict()
            counts = ", ".join(f"{k} {v}" for k, v in summary.items() if isinstance(v, int))
            out.print(f"  {src.name:<11} {counts}")
        _match(db, settings, out, err)
        _decisions(db, settings, out, err)
        with db.session() as session:
            logins = demo_users(session)
    finally:
        db.dispose()
    out.print(
        f"demo data ready in {time.perf_counter() - started:.0f} s; "
        f"ground truth: {directory / manifest.truth_file}"
    )
    out.print("demo logins (for this demo only; never use these passwords elsewhere):")
    for username, password in logins:
        out.print(f"  {username:<10} password {password}")
    # The demo serves plain http://: a Secure session cookie would never come back.
    if "RELATA_ENVIRONMENT" not in os.environ:
        os.environ["RELATA_ENVIRONMENT"] = "development"
        get_settings.cache_clear()


def _match(db: Database, settings: Settings, out: Console, err: Console) -> None:
    """Train the matching model and run it once: the demo then has probabilistic merges
    and a review queue, and later events are matched in real time."""
    from relata.identity.matching import batch

    with err.status("training the matching model (relata dedupe train) …"):
        batch.train(db, settings)
    with err.status("finding duplicates (relata dedupe) …"):
        found = batch.dedupe(db, settings)
    out.print(
        f"  matching    merged {found.merged:,}, queued for review {found.queued:,} "
        f"({found.compared:,} pairs compared)"
    )


def _decisions(db: Database, settings: Settings, out: Console, err: Console) -> None:
    """Offers, contact policies, personalisation consents and a history of decisions and
    responses: the decision simulator and offer performance then show something."""
    from relata.demo import offers

    with err.status("setting up next best offer (offers, consents, 600 decisions) …"):
        done = offers.load(db, settings)
    out.print(
        f"  decisions   {done['offers']} offers new, {done['consents']:,} customers with a "
        f"personalisation consent, {done['decisions']} decisions, {done['responses']} responses"
    )


def demo_users(session: Session) -> list[tuple[str, str]]:
    """One user per role, named after it, with a known password (reset on every run)."""
    logins = []
    for role in ROLES:
        password = f"{role}-demo-password"
        try:
            add_user(session, role, role, password)
        except AlreadyExists:
            set_password(session, role, password)
        logins.append((role, password))
    return logins
