"""A marketer builds a segment in headless Chromium: conditions from lists, the live count,
the text form kept in step both ways, and saving."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from relata.auth.service import add_user
from relata.config import Settings
from relata.db import Database
from tests.browser import ARGS, running
from tests.helpers import make_source, put, rec

pytestmark = pytest.mark.e2e
PASSWORD = "segments-2026-builder"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    from relata.api.app import create_app

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'relata.db'}")
    db = Database(settings.database_url)
    db.migrate()
    make_source(db, "shop")
    put(
        db,
        settings,
        "shop",
        rec("1", first_name="Anna", gender="f", city="Köln"),
        rec("2", first_name="Berta", gender="f", city="Bonn"),
        rec("3", first_name="Carl", gender="m", city="Köln"),
    )
    with db.session() as session:
        # A marketing user would do as well (segments:read/write); the admin sees every page.
        add_user(session, "mara", "admin", PASSWORD)
    try:
        with running(create_app(settings, db)) as url:
            yield url
    finally:
        db.dispose()


def test_build_count_and_save_a_segment(chromium, server):
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
            page.get_by_label("Benutzername").fill("mara")
            page.get_by_label("Passwort").fill(PASSWORD)
            page.get_by_role("button", name="Anmelden").click()

            page.goto(server + "/segments")
            page.get_by_role("link", name="Neues Segment").click()
            builder = page.locator("#builder")
            expect(builder).to_be_visible()
            status = page.locator("#rule-status")
            text = page.locator("#rule-text")

            # A condition from the lists: Geschlecht ist weiblich.
            builder.get_by_role("button", name="+ Bedingung").click()
            builder.get_by_label("Feld").first.select_option("f:gender")
            expect(builder.get_by_label("Vergleich").first).to_have_value("=")
            builder.get_by_label("Wert").last.select_option("f")
            expect(text).to_have_value('gender = "f"')
            expect(status).to_have_text("2 Kunden")

            # A second one: Ort ist Köln; the count follows.
            builder.get_by_role("button", name="+ Bedingung").click()
            builder.get_by_label("Feld").nth(1).select_option("f:city")
            builder.locator("input[aria-label=Wert]").last.fill("Köln")
            expect(text).to_have_value('gender = "f" and city = "Köln"')
            expect(status).to_have_text("1 Kunden")

            # Either group to "oder" …
            builder.get_by_label("Trifft zu, wenn").select_option("or")
            expect(text).to_have_value('gender = "f" or city = "Köln"')
            expect(status).to_have_text("3 Kunden")

            # … and typing the text form rebuilds the lists.
            text.fill('city = "Bonn" and not gender = "m"')
            expect(status).to_have_text("1 Kunden")
            expect(builder.locator(".rule-row")).to_have_count(2)
            expect(builder.get_by_label("Feld").first).to_have_value("f:city")
            expect(builder.locator(".rule-not input").nth(2)).to_be_checked()

            # A mistake is shown where it is, and the count waits for a valid rule.
            text.fill("city = ")
            expect(status).to_contain_text("line 1, column 8: expected a value")
            text.fill('city = "Bonn"')
            expect(status).to_have_text("1 Kunden")

            page.get_by_label("Name", exact=True).fill("Bonner")
            page.get_by_role("button", name="Speichern").click()
            expect(page.locator(".notice")).to_have_text("Gespeichert als Version 1.")
            expect(page.locator("h1")).to_have_text("Bonner")
            expect(status).to_have_text("1 Kunden")
        finally:
            browser.close()
    # The browser logs the check's 422 for the broken rule as a console error; expected.
    assert problems == [
        "Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"
    ]
