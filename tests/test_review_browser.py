"""The review page in Debian's headless Chromium: compare, read the weights, decide."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from relata.auth.service import add_user
from relata.config import Settings
from relata.db import Database
from relata.identity.matching import batch, store
from tests.browser import ARGS, running
from tests.matching_helpers import trained
from tests.test_matching_store import ANNETT, JUERGEN, JUERGEN_AGAIN, _people, weight

pytestmark = pytest.mark.e2e
PASSWORD = "review-desk-2026"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """uvicorn on a SQLite database with one pair (the two Annetts) open for review."""
    from relata.api.app import create_app

    names_only, same = weight(*ANNETT), weight(JUERGEN, JUERGEN_AGAIN)
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'relata.db'}",
        match_auto_merge_weight=(names_only + same) / 2,
        match_review_weight=names_only - 1,
    )
    db = Database(settings.database_url)
    db.migrate()
    with db.session() as session:
        store.save_model(session, trained(), "duckdb")
        add_user(session, "rita", "admin", PASSWORD)
    _people(db, settings)
    batch.dedupe(db, settings)

    try:
        with running(create_app(settings, db)) as url:
            yield url
    finally:
        db.dispose()


def test_review_a_pair_in_the_browser(chromium: Path, server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=ARGS)
        try:
            page = browser.new_page(locale="de-DE")
            page.set_default_timeout(5000)
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.goto(server + "/login")
            page.get_by_label("Benutzername").fill("rita")
            page.get_by_label("Passwort").fill(PASSWORD)
            page.get_by_role("button", name="Anmelden").click()

            page.get_by_role("link", name="Dublettenprüfung").click()
            expect(page.get_by_role("heading", name="Dublettenprüfung")).to_be_visible()
            page.get_by_role("link", name="Paar 1").click()

            # Side by side; the e-mail only one of them has is marked as differing.
            rows = page.locator("table.compare tbody tr")
            expect(rows.filter(has_text="Vorname")).to_contain_text("Annett")
            expect(rows.filter(has_text="E-Mail")).to_have_class("differs")
            expect(rows.filter(has_text="Nachname")).not_to_have_class("differs")
            # The waterfall: the prior first, every comparison after, each with its bar.
            bars = page.locator("table.waterfall tbody tr")
            expect(bars).to_have_count(9)  # the prior and eight comparisons
            expect(bars.first).to_contain_text("prior")
            expect(page.locator("table.waterfall .bar")).to_have_count(9)

            page.get_by_role("button", name="Verschiedene Personen").click()
            expect(page).to_have_url(server + "/reviews")
            expect(page.get_by_text("Keine offenen Paare")).to_be_visible()
        finally:
            browser.close()
    assert problems == []
