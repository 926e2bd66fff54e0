"""One walk through the UI in Debian's headless Chromium against a real uvicorn server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from relata.auth.service import add_user
from relata.config import Settings
from relata.db import Database
from relata.events import service as events
from relata.events.schemas import Batch
from tests.browser import ARGS, running
from tests.helpers import make_source, put, rec

pytestmark = pytest.mark.e2e
PASSWORD = "service-desk-2026"


def _orders(count: int) -> Batch:
    return Batch.model_validate(
        {
            "source": "shop",
            "batch": [
                {
                    "type": "track",
                    "userId": "K100023",
                    "event": "Order Completed",
                    "messageId": f"order-{n}",
                    "timestamp": f"2026-11-{10 + n:02d}T13:05:00Z",
                    "properties": {
                        "order_id": f"O-{n}",
                        "currency": "EUR",
                        "products": [{"name": "Laufschuh", "price": 1289.9, "quantity": 2}],
                    },
                }
                for n in range(1, count + 1)
            ],
        }
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """uvicorn serving a small SQLite database; yields its base URL and Jürgen's id."""
    from relata.api.app import create_app

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'relata.db'}", timeline_page_size=3)
    db = Database(settings.database_url)
    db.migrate()
    make_source(db, "shop", trust=80)
    make_source(db, "newsletter", "newsletter", trust=40)
    shop = put(
        db,
        settings,
        "shop",
        rec("K100023", first_name="Jürgen", last_name="Müller-Lüdenscheidt", email="jm@web.de"),
    )
    put(db, settings, "newsletter", rec("NL-77", email="jm@web.de", phone="+4922112345"))
    with db.session() as session:
        events.ingest(session, _orders(5).batch, settings, "shop")
        add_user(session, "bea", "agent", PASSWORD)

    try:
        with running(create_app(settings, db)) as url:
            yield url, shop.customer_of["K100023"]
    finally:
        db.dispose()


def test_search_open_the_360_view_page_the_timeline_and_switch_language(chromium, server):
    from playwright.sync_api import expect, sync_playwright

    base, cid = server
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=ARGS)
        try:
            page = browser.new_page(locale="de-DE")
            page.set_default_timeout(5000)
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)

            # Not signed in: the login page, then back to where we were going.
            page.goto(base + "/")
            expect(page).to_have_url(f"{base}/login?next=%2F")
            page.get_by_label("Benutzername").fill("bea")
            page.get_by_label("Passwort").fill("wrong password")
            page.get_by_role("button", name="Anmelden").click()
            expect(page.locator("#login-error")).to_have_text(
                "Benutzername oder Passwort ist falsch."
            )
            # The browser logs the page's 401 (wrong password) as a console error; expected.
            assert problems == [
                "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
            ]
            problems.clear()
            page.get_by_label("Benutzername").fill("bea")
            page.get_by_label("Passwort").fill(PASSWORD)
            page.get_by_role("button", name="Anmelden").click()
            expect(page).to_have_url(f"{base}/")
            expect(page.locator("#user-menu")).to_contain_text("bea")

            search = page.get_by_label("Suche nach Name, E-Mail, Telefon")
            expect(search).to_be_focused()
            search.type("Müller")
            search.press("Enter")
            result = page.get_by_role("link", name="Jürgen Müller-Lüdenscheidt")
            expect(result).to_be_visible()
            result.click()

            expect(page).to_have_url(f"{base}/customers/{cid}")
            expect(page.locator("h1")).to_have_text("Jürgen Müller-Lüdenscheidt")
            # Golden record with provenance: the phone is the newsletter's, record NL-77.
            phone = page.locator("#field-phone")
            expect(phone).to_contain_text("+4922112345")
            expect(phone.locator(".src")).to_have_text("newsletter")
            expect(phone.locator(".key")).to_have_text("NL-77")
            expect(page.locator("#field-first_name .src")).to_have_text("shop")
            expect(page.get_by_text("2.579,80\u00a0€").first).to_be_visible()

            events_shown = page.locator("#timeline-list > li")
            expect(events_shown).to_have_count(3)
            expect(events_shown.first).to_contain_text("order_id: O-5")
            expect(events_shown.first).to_contain_text("Bestellung abgeschlossen")
            page.get_by_role("link", name="Ältere Ereignisse").click()
            expect(events_shown).to_have_count(5)
            expect(events_shown.last).to_contain_text("order_id: O-1")
            expect(page.get_by_role("link", name="Ältere Ereignisse")).to_have_count(0)

            page.get_by_role("link", name="English").click()
            expect(page.locator("html")).to_have_attribute("lang", "en")
            expect(page.get_by_role("heading", name="Golden record")).to_be_visible()
            expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
            expect(page.locator("#field-phone th")).to_have_text("Phone")
            page.get_by_role("link", name="Customer search").click()
            expect(page.get_by_role("heading", name="Customer search")).to_be_visible()

            # Signing out ends the session: the next page asks to sign in again.
            page.get_by_role("button", name="Sign out").click()
            expect(page).to_have_url(f"{base}/login")
            page.goto(f"{base}/customers/{cid}")
            expect(page).to_have_url(f"{base}/login?next=%2Fcustomers%2F{cid}")
        finally:
            browser.close()
    assert problems == []
