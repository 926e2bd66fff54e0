"""The web pages: search, the 360° view, both languages, and bad input, on both databases."""

from __future__ import annotations

import base64
import html
import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from relata.config import Settings
from relata.web import i18n
from relata.web.i18n import Locale
from tests.helpers import make_source, put, rec

PAGE_SIZE = 3


@pytest.fixture
def settings(db) -> Settings:
    # Small timeline pages, so that paging shows with a handful of events.
    return Settings(database_url=db.url, timeline_page_size=PAGE_SIZE)


def juergen(db, settings) -> int:
    """Jürgen, known to the shop and to the newsletter, which alone knows his phone."""
    make_source(db, "shop", trust=80)
    make_source(db, "newsletter", "newsletter", trust=40)
    shop = put(
        db,
        settings,
        "shop",
        rec(
            "K100023",
            first_name="Jürgen",
            last_name="Müller-Lüdenscheidt",
            email="j.mueller@web.de",
            birth_date="1980-12-31",
            customer_number="K100023",
            postcode="50667",
            city="Köln",
        ),
    )
    put(
        db,
        settings,
        "newsletter",
        rec("NL-77", first_name="Juergen", email="j.mueller@web.de", phone="+4922112345"),
    )
    return shop.customer_of["K100023"]


def post_events(client, *messages: dict, source: str | None = None) -> dict:
    body: dict = {"batch": list(messages)}
    if source:
        body["source"] = source
    response = client.post("/v1/events", json=body)
    assert response.status_code == 202, response.text
    return response.json()


def order(n: int, day: int, price: float = 1289.9) -> dict:
    return {
        "type": "track",
        "userId": "K100023",
        "event": "Order Completed",
        "messageId": f"order-{n}",
        "timestamp": f"2026-11-{day:02d}T13:05:00Z",
        "properties": {
            "order_id": f"O-{n}",
            "currency": "EUR",
            "products": [
                {"product_id": "SKU-1", "name": "Laufschuh", "price": price, "quantity": 2}
            ],
        },
    }


def row(page: str, row_id: str) -> str:
    """The text of one table row (or other element) by its id, tags removed."""
    found = re.search(rf'<(\w+)[^>]*id="{row_id}"[^>]*>(.*?)</\1>', page, re.S)
    assert found, f"no element with id {row_id}"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found.group(2))).split())


def timeline_of(page: str) -> str:
    return page[page.index('id="timeline"') :]


def older_link(page: str) -> str | None:
    found = re.search(r'<a class="button" rel="next"\s+href="([^"]+)"', page)
    return html.unescape(found.group(1)) if found else None


# --- search ------------------------------------------------------------------------------


def test_empty_search_shows_an_introduction_and_a_focused_search_box(client):
    page = client.get("/").text
    assert "Geben Sie einen Namen" in page
    assert re.search(r'<input id="q" name="q" type="search"[^>]*autofocus', page)
    assert '<label for="q">' in page


def test_search_finds_customers_by_name_email_and_customer_number(client, db, settings):
    cid = juergen(db, settings)
    for q in ("müller", "Jürgen Müller", "J.Mueller@Web.de", "K100023", "0221 12345"):
        page = client.get("/", params={"q": q}).text
        assert f'href="/customers/{cid}"' in page, q
        assert "Jürgen Müller-Lüdenscheidt" in page
        assert "31.12.1980" in page and "50667 Köln" in page
    nothing = client.get("/", params={"q": "Zimmermann"})
    assert nothing.status_code == 200
    assert "Keine Kunden zu „Zimmermann“ gefunden" in nothing.text


@pytest.mark.parametrize("q", ["\x00", "a" * 5000, "%_*'\"", "   "])
def test_odd_search_input_is_answered_not_refused(client, q):
    response = client.get("/", params={"q": q})
    assert response.status_code == 200


# --- the 360° view ------------------------------------------------------------------------


def test_the_view_shows_every_golden_field_with_its_provenance(client, db, settings):
    cid = juergen(db, settings)
    page = client.get(f"/customers/{cid}").text
    assert "<h1 " in page and "Jürgen Müller-Lüdenscheidt</h1>" in page
    assert f"Kunden-ID <strong>{cid}</strong>" in page
    # The shop is trusted more: the first name is the shop's, and the page says so.
    assert row(page, "field-first_name").startswith("Vorname Jürgen shop K100023")
    # Only the newsletter knows the phone number.
    phone = row(page, "field-phone")
    assert phone.startswith("Telefon +4922112345 newsletter NL-77")
    assert re.search(r"\d\d\.\d\d\.\d{4}$", phone)
    assert row(page, "field-birth_date").startswith("Geburtsdatum 31.12.1980")
    assert 'title="Quelle newsletter, Schlüssel NL-77, Stand ' in page
    # Identifiers name the sources they were seen in; each source record opens up.
    assert re.search(
        r'j\.mueller@web\.de</span>\s*<span class="seen">.*?</span> '
        r'<span class="src">newsletter</span> <span class="src">shop</span></span>',
        page,
    )
    assert page.count('<details class="record">') == 2
    assert "<dt>Kundennummer</dt><dd>K100023</dd>" in page


def test_the_view_shows_holdings_and_the_timeline_newest_first_with_paging(client, db, settings):
    cid = juergen(db, settings)
    post_events(client, *(order(n, day=10 + n) for n in range(1, 6)), source="shop")
    page = client.get(f"/customers/{cid}").text

    assert "Käufe und Verträge" in page and "2.579,80\u00a0€" in page and "Laufschuh" in page
    timeline = timeline_of(page)
    shown = re.findall(r"order_id: (O-\d)", timeline)
    assert shown == ["O-5", "O-4", "O-3"]
    berlin = i18n.DISPLAY_TZ is not UTC
    assert f"15.11.2026 {'14' if berlin else '13'}:05" in timeline

    older = older_link(page)
    assert older is not None and older.startswith(f"/customers/{cid}?before=")
    second = client.get(older)
    assert second.status_code == 200
    assert re.findall(r"order_id: (O-\d)", timeline_of(second.text)) == ["O-2", "O-1"]
    assert older_link(second.text) is None
    assert "Zurück zu den neuesten Ereignissen" in second.text

    # The same page as a fragment, which relata.js appends in place.
    cursor = older.split("before=")[1].split("#")[0]
    fragment = client.get(f"/customers/{cid}/timeline?before={cursor}")
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert re.findall(r"order_id: (O-\d)", fragment.text) == ["O-2", "O-1"]


def test_an_anonymous_visitor_is_shown_as_such(client):
    visit = {"type": "page", "anonymousId": "a-1", "name": "Startseite", "messageId": "p-1"}
    cid = post_events(client, visit)["customers"][0]
    page = client.get(f"/customers/{cid}").text
    assert 'class="anonymous">Anonymer Besucher</h1>' in page
    assert "Noch keine Stammdaten" in page
    assert "Startseite" in timeline_of(page)


def test_data_is_escaped_never_executed(client, db, settings):
    make_source(db, "shop")
    evil = put(db, settings, "shop", rec("<b>K1</b>", last_name="<script>alert(1)</script>"))
    cid = evil.customer_of["<b>K1</b>"]
    for page in (client.get(f"/customers/{cid}").text, client.get("/?q=<script>").text):
        assert "<script>alert" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;K1&lt;/b&gt;" in client.get(f"/customers/{cid}").text


def test_a_merged_away_customer_redirects_to_the_survivor(client, db, settings):
    make_source(db, "shop", trust=80)
    make_source(db, "pos", "pos", trust=60)
    make_source(db, "hotline", "hotline")
    a = put(db, settings, "shop", rec("K1", last_name="Schulz", email="a@gmx.de")).customer_of["K1"]
    b = put(db, settings, "pos", rec("C9", last_name="Schulz", loyalty_card="C9")).customer_of["C9"]
    linked = put(db, settings, "hotline", rec("T1", email="a@gmx.de", loyalty_card="C9"))
    survivor, merged = linked.customer_of["T1"], max(a, b)
    assert survivor == min(a, b)

    response = client.get(f"/customers/{merged}", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/customers/{survivor}?merged_from={merged}"
    page = client.get(f"/customers/{merged}").text
    assert f"Kunde {merged} wurde mit diesem Kunden zusammengeführt" in page
    assert "Kunden zusammengeführt" in timeline_of(page)


@pytest.mark.parametrize("bad", ["999999", "0", "-1", "abc", "1e3", "99999999999999999999999", "١"])
def test_an_unknown_customer_is_a_404_page(client, bad):
    response = client.get(f"/customers/{bad}")
    assert response.status_code == 404
    assert "Kunde nicht gefunden" in response.text and "<html" in response.text


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "before",
    [
        "garbage",
        "%%%",
        _cursor("2026-11-20T10:00:00|5"),  # no time zone
        _cursor("2026-11-20T10:00:00+00:00|99999999999999999999999"),
        _cursor("yesterday|5"),
    ],
)
def test_a_bad_cursor_is_a_message_not_an_error(client, db, settings, before):
    cid = juergen(db, settings)
    for path in (f"/customers/{cid}", f"/customers/{cid}/timeline"):
        response = client.get(path, params={"before": before})
        assert response.status_code == 422, path
        assert "Ungültiger Link zum Blättern" in response.text


def test_unknown_pages_are_html_for_browsers_and_json_for_the_api(client):
    page = client.get("/nowhere", headers={"Accept": "text/html"})
    assert page.status_code == 404 and "Seite nicht gefunden" in page.text
    api = client.get("/v1/customers/424242", headers={"Accept": "text/html,*/*"})
    assert api.status_code == 404 and api.json()["detail"]


def test_pages_use_our_own_static_files_only(client):
    page = client.get("/")
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    for asset in re.findall(r'(?:href|src)="(/static/[^"]+)"', page.text):
        assert client.get(asset).status_code == 200
    assert "http" not in re.sub(r'href="[^"]*"', "", page.text.split("<body>")[0])
    assert client.get("/static/relata.css").headers["content-type"].startswith("text/css")


# --- languages ----------------------------------------------------------------------------


def test_the_language_comes_from_the_link_then_the_cookie_then_the_browser(client, db, settings):
    cid = juergen(db, settings)
    german = client.get(f"/customers/{cid}").text
    assert '<html lang="de">' in german and "Stammdaten" in german and "Geburtsdatum" in german
    assert f'href="/customers/{cid}?lang=en"' in german

    english = client.get(f"/customers/{cid}?lang=en")
    assert '<html lang="en">' in english.text
    assert "Golden record" in english.text and "1980-12-31" in english.text
    assert english.cookies.get(i18n.COOKIE) == "en"
    # The cookie keeps English on the next page, without the parameter.
    assert "Customer search" in client.get("/").text

    client.cookies.clear()
    browser = client.get("/", headers={"Accept-Language": "en-GB,en;q=0.9,de;q=0.8"}).text
    assert "Customer search" in browser
    assert "Kundensuche" in client.get("/", headers={"Accept-Language": "fr, de;q=0.5"}).text
    assert "Kundensuche" in client.get("/?lang=xx").text


def test_both_catalogues_have_the_same_messages():
    assert set(i18n.MESSAGES["de"]) == set(i18n.MESSAGES["en"])
    assert all(i18n.MESSAGES["en"].values()) and all(i18n.MESSAGES["de"].values())


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", "de"),
        ("en-US,en;q=0.9", "en"),
        ("de-AT", "de"),
        ("fr-FR, en;q=0.4, de;q=0.6", "de"),
        ("en;q=0, de;q=0.1", "de"),
        ("en;q=bad", "de"),
        ("*", "de"),
    ],
)
def test_accept_language(header, expected):
    assert i18n.from_accept_language(header) == expected


def test_choose_prefers_the_parameter_then_the_cookie():
    assert i18n.choose("en", "de", "de") == "en"
    assert i18n.choose(None, "en", "de") == "en"
    assert i18n.choose("xx", "yy", "en") == "en"
    assert i18n.choose(None, None, None) == "de"


def test_dates_numbers_and_money_per_language():
    de, en = Locale("de"), Locale("en")
    assert de.date(date(1980, 12, 31)) == "31.12.1980"
    assert en.date(date(1980, 12, 31)) == "1980-12-31"
    winter = datetime(2026, 11, 23, 13, 5, tzinfo=UTC)
    hour = "14" if i18n.DISPLAY_TZ is not UTC else "13"
    assert de.datetime(winter) == f"23.11.2026 {hour}:05"
    assert en.datetime(winter) == f"2026-11-23 {hour}:05"
    if i18n.DISPLAY_TZ is not UTC:  # 23:30 UTC on New Year's Eve is the new year in Berlin
        assert de.date(datetime(2026, 12, 31, 23, 30, tzinfo=UTC)) == "01.01.2027"
    assert de.money(Decimal("1234567.5"), "EUR") == "1.234.567,50\u00a0€"
    assert en.money(Decimal("1234567.5"), "EUR") == "€1,234,567.50"
    assert en.money(Decimal("-3"), "USD") == "-$3.00"
    assert de.money(Decimal("12"), "CHF") == "12,00\u00a0CHF"
    assert en.money(Decimal("12"), "CHF") == "CHF\u00a012.00"
    assert de.money(Decimal("0.5"), None) == "0,50"
    assert de.number(Decimal("2.000")) == "2" and de.number(Decimal("1E+3")) == "1.000"
    assert en.number(Decimal("1234.25")) == "1,234.25"
    assert de.t("customer.age", n=44) == "44 Jahre" and en.t("no.such.key") == "no.such.key"


def test_every_survivorship_rule_has_a_label_in_both_languages():
    from relata.profiles.survivorship import PROVENANCE_RULES
    from relata.web.i18n import MESSAGES

    for lang, messages in MESSAGES.items():
        missing = {r for r in PROVENANCE_RULES if f"golden.rule.{r}" not in messages}
        assert not missing, (lang, missing)
