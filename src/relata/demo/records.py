"""The five record sources: what each system knows of a person, and how it writes it down.

Every builder returns a :class:`RecordFile`: header, rows in the order the system would
export them, and for every row its key, the true person and whether an importer should
accept it. Row order never follows person order, so nothing leaks through it.
"""

from __future__ import annotations

import csv
import random
import string
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from relata.demo.dirt import Dirt, invalid_count
from relata.demo.names import Phone
from relata.demo.people import Address, Person

# fmt: off
# source -> (encoding, delimiter, line end, header)
FORMATS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "shop": ("utf-8-sig", ",", "\r\n", (
        "Kundennummer", "Anrede", "Vorname", "Nachname", "E-Mail", "Telefon", "Straße",
        "Hausnummer", "PLZ", "Ort", "Land", "Geburtsdatum")),
    "pos": ("cp1252", ";", "\r\n", (
        "Kartennummer", "Name", "Vorname", "Geburtsdatum", "Strasse", "PLZ", "Ort", "Telefon")),
    "newsletter": ("utf-8", ";", "\n", ("email", "vorname", "nachname", "angemeldet_am")),
    "hotline": ("utf-8", "\t", "\n", (
        "Ticket-ID", "Vorname", "Nachname", "Telefon", "Kundennummer", "Anliegen", "Datum")),
    "coupon": ("utf-8", ",", "\n", (
        "Code", "Einloeser_Vorname", "Einloeser_Nachname", "Mail", "Eingeloest", "Filiale")),
}
_CONCERNS = (
    "Lieferstatus", "Rücksendung", "Rechnung", "Adressänderung", "Reklamation", "Kündigung",
    "Gutschein einlösen", "Passwort vergessen", "Produktfrage", "Rückruf erbeten", "Umtausch",
    "Zahlung fehlgeschlagen",
)
_STORES = (
    "Berlin Alexanderplatz", "Hamburg Mönckebergstraße", "München Marienplatz",
    "Köln Schildergasse", "Frankfurt Zeil", "Stuttgart Königstraße", "Leipzig Petersstraße",
    "Dresden Prager Straße", "Düsseldorf Schadowstraße", "Nürnberg Breite Gasse", "Online",
)
# fmt: on
_COUNTRY_NAMES = {"DE": "Deutschland", "AT": "Österreich", "CH": "Schweiz"}
CUSTOMER_NUMBER_GIVEN = 0.85  # share of hotline tickets of shop customers with their number
_IMPOSSIBLE_DAYS = ((31, 2), (30, 2), (31, 4), (31, 6), (31, 9), (31, 11))
_CODE_ALPHABET = "".join(c for c in string.ascii_uppercase + string.digits if c not in "O0I1")


@dataclass
class RecordFile:
    """The rows of one source, each with its key, true person and validity."""

    source: str
    rows: list[list[str]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    pids: list[str] = field(default_factory=list)
    valid: list[bool] = field(default_factory=list)

    def add(self, key: str, pid: str, row: list[str]) -> None:
        self.rows.append(row)
        self.keys.append(key)
        self.pids.append(pid)
        self.valid.append(True)

    def sort(self, column: int) -> None:
        order = sorted(range(len(self.rows)), key=lambda i: (self.rows[i][column], self.keys[i]))
        for name in ("rows", "keys", "pids", "valid"):
            items = getattr(self, name)
            setattr(self, name, [items[i] for i in order])

    def write(self, path: Path) -> None:
        """Write in the source's own format; characters its encoding lacks become "?"."""
        encoding, delimiter, line_end, header = FORMATS[self.source]
        with path.open("w", encoding=encoding, errors="replace", newline="") as fh:
            writer = csv.writer(fh, delimiter=delimiter, lineterminator=line_end)
            writer.writerow(header)
            writer.writerows(self.rows)


@dataclass
class Context:
    rng: random.Random
    today: date
    stats: Counter[tuple[str, str]]

    def dirt(self, source: str) -> Dirt:
        return Dirt(self.rng, source, self.stats)

    def day_within(self, days: int) -> date:
        return self.today - timedelta(days=self.rng.randint(1, days))

    def invalid_rows(self, rf: RecordFile, kind: str) -> list[int]:
        picked = self.rng.sample(
            range(len(rf.rows)), min(len(rf.rows), invalid_count(len(rf.rows)))
        )
        for i in picked:
            rf.valid[i] = False
            self.stats[(rf.source, kind)] += 1
        return picked


def _german(day: date) -> str:
    return day.strftime("%d.%m.%Y")


def _address(d: Dirt, p: Person) -> tuple[Address, bool]:
    if p.old_address is not None and d.hit("old_address"):
        return p.old_address, True
    return p.address, False


def _phone_of(rng: random.Random, p: Person, old: bool, prefer_mobile: float) -> Phone | None:
    landline = p.old_landline if old and p.old_landline else p.landline
    first, second = (p.mobile, landline) if rng.random() < prefer_mobile else (landline, p.mobile)
    return first or second


def _country(rng: random.Random, code: str) -> str:
    roll = rng.random()
    if roll < 0.05:
        return ""
    return code if roll < 0.75 else _COUNTRY_NAMES[code]


# --- shop -------------------------------------------------------------------------------


def _shop_row(ctx: Context, d: Dirt, p: Person, number: str, email: str | None) -> list[str]:
    first, last = d.name(p.first_name, p.last_name)
    address, old = _address(d, p)
    born = d.birth_date(p.birth_date)
    salutation = "" if ctx.rng.random() < 0.03 else ("Herr" if p.gender == "m" else "Frau")
    return [
        number,
        salutation,
        first,
        last,
        d.email(email) or "",
        d.phone(_phone_of(ctx.rng, p, old, 0.7)),
        d.street(address.street),
        d.house_number(address.house_number),
        address.postcode,
        address.city,
        _country(ctx.rng, address.country),
        born.isoformat() if born else "",
    ]


def shop(ctx: Context, people: list[Person]) -> RecordFile:
    rf = RecordFile("shop")
    d = ctx.dirt("shop")
    for p in people:
        if p.customer_number:
            rf.add(p.customer_number, p.pid, _shop_row(ctx, d, p, p.customer_number, p.email))
        if p.second_customer_number:
            row = _shop_row(ctx, d, p, p.second_customer_number, p.alt_email)
            rf.add(p.second_customer_number, p.pid, row)
    rf.sort(0)
    for i in ctx.invalid_rows(rf, "short_row"):
        rf.rows[i] = rf.rows[i][: ctx.rng.randint(4, 8)]
    return rf


# --- pos --------------------------------------------------------------------------------


def _card_numbers(rng: random.Random, count: int) -> list[str]:
    """EAN-13 numbers in the in-store range (prefix 2), with a correct check digit."""
    numbers = []
    for body in rng.sample(range(10**10, 10**11), count):
        digits = f"2{body}"
        total = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(digits))
        numbers.append(digits + str((10 - total % 10) % 10))
    return numbers


def _postcode(d: Dirt, postcode: str) -> str:
    if postcode.startswith("0") and d.hit("plz_no_zero"):
        return postcode.lstrip("0")
    return postcode


def _pos_row(ctx: Context, d: Dirt, p: Person, card: str, force_old: bool) -> list[str]:
    first, last = d.name(p.first_name, p.last_name)
    address, old = (p.old_address, True) if force_old and p.old_address else _address(d, p)
    born = d.birth_date(p.birth_date)
    return [
        card,
        last,
        first,
        _german(born) if born else "",
        f"{d.street(address.street)} {d.house_number(address.house_number)}",
        _postcode(d, address.postcode),
        address.city,
        d.phone(_phone_of(ctx.rng, p, old, 0.3)),
    ]


def pos(ctx: Context, people: list[Person]) -> RecordFile:
    rf = RecordFile("pos")
    d = ctx.dirt("pos")
    holders = [p for p in people if "pos" in p.sources]
    second = [p for p in holders if ctx.rng.random() < 0.03]
    cards = iter(_card_numbers(ctx.rng, len(holders) + len(second)))
    for p in holders:
        card = next(cards)
        rf.add(card, p.pid, _pos_row(ctx, d, p, card, False))
    for p in second:  # a replacement card; the lost one still holds the old address
        card = next(cards)
        d.count("second_card")
        rf.add(card, p.pid, _pos_row(ctx, d, p, card, True))
    rf.sort(0)
    for i in ctx.invalid_rows(rf, "impossible_date"):
        day, month = ctx.rng.choice(_IMPOSSIBLE_DAYS)
        year = ctx.rng.randint(1940, 2000)
        rf.rows[i][3] = f"{day:02d}.{month:02d}.{year}"
    return rf


# --- newsletter -------------------------------------------------------------------------


def newsletter(ctx: Context, people: list[Person]) -> RecordFile:
    rf = RecordFile("newsletter")
    d = ctx.dirt("newsletter")
    for p in people:
        if p.newsletter_email is None:
            continue
        email = d.email(p.newsletter_email) or p.newsletter_email
        first, last = ("", "") if d.hit("no_name") else d.name(p.first_name, p.last_name)
        if last and ctx.rng.random() < 0.25:
            d.count("no_last_name")
            last = ""
        rf.add(email, p.pid, [email, first, last, ctx.day_within(6 * 365).isoformat()])
    rf.sort(3)
    return rf


# --- hotline ----------------------------------------------------------------------------


def _ticket_time(ctx: Context) -> datetime:
    day = ctx.day_within(3 * 365)
    while day.weekday() == 6:
        day -= timedelta(days=1)
    minute = ctx.rng.randrange(8 * 60, 20 * 60)
    return datetime(day.year, day.month, day.day, minute // 60, minute % 60)


def _hotline_row(ctx: Context, d: Dirt, p: Person) -> list[str]:
    first, last = ("", "") if d.hit("no_name") else d.name(p.first_name, p.last_name)
    number = ""
    if p.customer_number and ctx.rng.random() < CUSTOMER_NUMBER_GIVEN:
        second = p.second_customer_number and ctx.rng.random() < 0.3
        number = p.second_customer_number if second else p.customer_number
    phone = d.phone(_phone_of(ctx.rng, p, False, 0.6))
    if not (first or last or phone or number):  # only the invalid rows are that empty
        first, last = p.first_name, p.last_name
    when = _ticket_time(ctx).strftime("%d.%m.%Y %H:%M")
    return ["", first, last, phone, number or "", ctx.rng.choice(_CONCERNS), when]


def hotline(ctx: Context, people: list[Person]) -> RecordFile:
    rf = RecordFile("hotline")
    d = ctx.dirt("hotline")
    rows: list[tuple[datetime, list[str], str]] = []
    for p in people:
        if "hotline" not in p.sources:
            continue
        for _ in range(ctx.rng.choices((1, 2, 3, 4), (62, 24, 10, 4))[0]):
            row = _hotline_row(ctx, d, p)
            rows.append((datetime.strptime(row[6], "%d.%m.%Y %H:%M"), row, p.pid))
    rows.sort(key=lambda item: (item[0], item[2]))
    for n, (when, row, pid) in enumerate(rows, start=1):
        row[0] = f"T{when.year}-{n:06d}"
        rf.add(row[0], pid, row)
    for i in ctx.invalid_rows(rf, "no_name_no_identifier"):
        rf.rows[i][1:5] = ["", "", "", ""]
    return rf


# --- coupon -----------------------------------------------------------------------------


def _coupon_code(rng: random.Random, used: set[str]) -> str:
    while True:
        code = "GS-" + "".join(rng.choices(_CODE_ALPHABET, k=4)) + "-"
        code += "".join(rng.choices(_CODE_ALPHABET, k=4))
        if code not in used:
            used.add(code)
            return code


def coupon(ctx: Context, people: list[Person]) -> RecordFile:
    rf = RecordFile("coupon")
    d = ctx.dirt("coupon")
    used: set[str] = set()
    for p in people:
        if "coupon" not in p.sources:
            continue
        for _ in range(ctx.rng.choices((1, 2, 3), (70, 22, 8))[0]):
            first, last = ("", "") if d.hit("no_name") else d.name(p.first_name, p.last_name)
            email = p.alt_email if p.alt_email and ctx.rng.random() < 0.25 else p.email
            mail = d.email(email) or ""
            if not (first or last or mail):  # nobody to match at all: keep the name
                first, last = p.first_name, p.last_name
            code = _coupon_code(ctx.rng, used)
            redeemed = ctx.day_within(2 * 365).isoformat()
            row = [code, first, last, mail, redeemed, ctx.rng.choice(_STORES)]
            rf.add(code, p.pid, row)
    rf.sort(4)
    return rf


BUILDERS = {
    "shop": shop,
    "pos": pos,
    "newsletter": newsletter,
    "hotline": hotline,
    "coupon": coupon,
}
