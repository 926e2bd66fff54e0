"""The web source: Segment-style page, track and identify events of the demo shop.

A device browses anonymously under its ``anonymousId``; when its owner logs in, an
``identify`` links that id to a ``userId`` (the shop customer number, or "W…" for a web
login without shop account) and the device's later events carry both. Orders and
contracts are sent server-side, with the ``userId`` only. Visitors who never log in stay
anonymous and are in no ground truth.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any

from relata.demo.catalogue import CATEGORY_SLUGS, CONTRACTS, PRODUCTS, Product
from relata.demo.people import Person

WINDOW_DAYS = 730
SHOP_URL = "https://shop.example.de"
ANONYMOUS_VISITORS = 0.4  # per person: devices that never log in
CONTRACT_SHARE = 0.06  # of web users
CANCEL_SHARE = 0.25  # of contracts
IDENTIFY_SHARE = 0.8  # of shop customers with orders, who also log in on the web
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/123.0.0.0 Mobile Safari/537.36",
)
# Share of visits per hour of the day (UTC; German evenings are busiest).
# fmt: off
_HOUR_WEIGHTS = (
    1, 0.5, 0.3, 0.3, 0.5, 1.5, 3, 4, 5, 5, 5, 5.5,  # 0–11 h
    6, 5.5, 5, 5, 6, 7.5, 8, 8, 7, 5, 3, 1.5,  # 12–23 h
)
# fmt: on
_HOUR_CUM = tuple(accumulate(_HOUR_WEIGHTS))
_DAY = 86400
_SEARCHES = ("laufschuhe", "jacke", "geschenk", "kaffee", "zelt", "kopfhörer", "puzzle", "sale")


@dataclass(slots=True)
class Device:
    anonymous_id: str
    user_agent: str
    locale: str
    identified_at: int | None = None  # epoch second of the identify on this device
    user_id: str | None = None


class WebEvents:
    """Collects events with their epoch second; written sorted by time."""

    def __init__(self, rng: random.Random, today: date) -> None:
        self.rng = rng
        midnight = datetime(today.year, today.month, today.day, tzinfo=UTC)
        self.end = int(midnight.timestamp()) - 3 * 3600  # room for the last session
        self.start = int((midnight - timedelta(days=WINDOW_DAYS)).timestamp())
        self.events: list[tuple[int, int, dict[str, Any]]] = []
        self.contract_ids: set[str] = set()

    # --- building blocks ----------------------------------------------------------------

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def when(self, lo: int | None = None, hi: int | None = None) -> int:
        """A moment in [lo, hi), at the hours people shop."""
        lo = self.start if lo is None else lo
        hi = self.end if hi is None else hi
        day = lo - lo % _DAY + _DAY * self.rng.randrange((hi - lo) // _DAY + 1)
        hour = self.rng.choices(range(24), cum_weights=_HOUR_CUM)[0]
        ts = day + 3600 * hour + self.rng.randrange(3600)
        return ts if lo <= ts < hi else self.rng.randrange(lo, hi)

    def emit(self, ts: int, body: dict[str, Any]) -> None:
        self.events.append((ts, len(self.events), body))

    def device(self, locale: str = "de-DE") -> Device:
        return Device(self.uuid(), self.rng.choice(USER_AGENTS), locale)

    def client(
        self, dev: Device, ts: int, head: dict[str, Any], props: dict[str, Any], context: bool
    ) -> None:
        """An event sent by the browser; ``context`` False keeps the file small where the
        page event just before already told the user agent."""
        body = dict(head)
        if dev.identified_at is not None and ts >= dev.identified_at:
            body["userId"] = dev.user_id
        body |= {
            "anonymousId": dev.anonymous_id,
            "messageId": self.uuid(),
            "timestamp": ts,
            "properties": props,
        }
        if context:
            body["context"] = {"userAgent": dev.user_agent, "locale": dev.locale}
        self.emit(ts, body)

    def server(self, ts: int, event: str, user_id: str, props: dict[str, Any]) -> None:
        self.emit(
            ts,
            {
                "type": "track",
                "event": event,
                "userId": user_id,
                "messageId": self.uuid(),
                "timestamp": ts,
                "properties": props,
            },
        )

    def page(self, dev: Device, ts: int, name: str, path: str, title: str) -> None:
        props = {"url": SHOP_URL + path, "path": path, "title": title}
        self.client(dev, ts, {"type": "page", "name": name}, props, context=True)

    def product_view(self, dev: Device, ts: int, product: Product) -> None:
        path = f"/p/{product.product_id[4:]}"
        self.page(dev, ts, "Produktseite", path, f"{product.name} | Demo-Shop")
        props = {
            "product_id": product.product_id,
            "name": product.name,
            "category": product.category,
            "price": product.price,
        }
        self.client(dev, ts + 1, {"type": "track", "event": "Product Viewed"}, props, context=False)

    # --- behaviour ----------------------------------------------------------------------

    def session(self, dev: Device, ts: int) -> int:
        """A visit of a few pages; returns the time of its last page."""
        for _ in range(self.rng.choices((1, 2, 3, 4), (40, 30, 20, 10))[0]):
            roll = self.rng.random()
            if roll < 0.55:
                self.product_view(dev, ts, self.rng.choice(PRODUCTS))
            elif roll < 0.8:
                category = self.rng.choice(list(CATEGORY_SLUGS))
                path = f"/c/{CATEGORY_SLUGS[category]}"
                self.page(dev, ts, "Kategorie", path, f"{category} | Demo-Shop")
            elif roll < 0.9:
                term = self.rng.choice(_SEARCHES)
                self.page(dev, ts, "Suche", f"/suche?q={term}", f"Suche: {term} | Demo-Shop")
            else:
                self.page(dev, ts, "Startseite", "/", "Demo-Shop – Ihr Online-Shop")
            ts += self.rng.randint(15, 300)
        return ts

    def identify(self, dev: Device, ts: int, user_id: str, traits: dict[str, str]) -> None:
        dev.identified_at, dev.user_id = ts, user_id
        self.emit(
            ts,
            {
                "type": "identify",
                "anonymousId": dev.anonymous_id,
                "userId": user_id,
                "traits": traits,
                "messageId": self.uuid(),
                "timestamp": ts,
                "context": {"userAgent": dev.user_agent, "locale": dev.locale},
            },
        )

    def order(self, dev: Device, user_id: str, ts: int) -> None:
        lines = []
        for product in self.rng.sample(PRODUCTS, self.rng.choices((1, 2, 3), (65, 25, 10))[0]):
            quantity = 2 if self.rng.random() < 0.1 else 1
            self.product_view(dev, ts - self.rng.randint(60, 1800), product)
            lines.append(
                {
                    "product_id": product.product_id,
                    "sku": product.product_id,
                    "name": product.name,
                    "category": product.category,
                    "price": product.price,
                    "quantity": quantity,
                }
            )
        total = round(sum(line["price"] * line["quantity"] for line in lines), 2)
        props = {
            "order_id": "",
            "total": total,
            "revenue": total,
            "currency": "EUR",
            "products": lines,
        }
        self.server(ts, "Order Completed", user_id, props)

    def contract(self, user_id: str) -> None:
        product = self.rng.choice(CONTRACTS)
        signed = self.when(hi=self.end - 40 * _DAY)
        start = _first_of_next_month(_day(signed))
        contract_id = self._contract_id()
        self.server(
            signed,
            "Contract Signed",
            user_id,
            {
                "contract_id": contract_id,
                "product_id": product.product_id,
                "product_name": product.name,
                "category": product.category,
                "amount": product.amount,
                "currency": "EUR",
                "start_date": start.isoformat(),
            },
        )
        if self.rng.random() < CANCEL_SHARE:
            cancelled = self.when(lo=signed + 30 * _DAY)
            end = _first_of_next_month(_first_of_next_month(_day(cancelled))) - timedelta(days=1)
            self.server(
                cancelled,
                "Contract Cancelled",
                user_id,
                {
                    "contract_id": contract_id,
                    "product_id": product.product_id,
                    "end_date": end.isoformat(),
                },
            )

    def _contract_id(self) -> str:
        while (contract_id := f"V-{self.rng.randrange(10**6, 10**7)}") in self.contract_ids:
            pass
        self.contract_ids.add(contract_id)
        return contract_id

    def user(self, p: Person) -> None:
        """Everything one person with a web login does."""
        user_id = p.web_user_id
        assert user_id is not None
        orders = _order_count(self.rng) if p.customer_number else 0
        logs_in = p.customer_number is None or orders == 0 or self.rng.random() < IDENTIFY_SHARE
        locale = "de-" + p.address.country
        devices = [self.device(locale) for _ in range(self.rng.choices((1, 2, 3), (70, 25, 5))[0])]
        traits = {"email": p.email or "", "firstName": p.first_name, "lastName": p.last_name}
        for n, dev in enumerate(devices):
            first = self.when()
            ts = self.session(dev, first)
            if logs_in and (n == 0 or self.rng.random() < 0.6):
                self.identify(dev, ts + self.rng.randint(10, 600), user_id, traits)
            for _ in range(self.rng.choices((0, 1, 2, 3), (45, 30, 15, 10))[0]):
                self.session(dev, self.when(lo=first))
        for _ in range(orders):
            self.order(self.rng.choice(devices), user_id, self.when(lo=self.start + 3600))
        if self.rng.random() < CONTRACT_SHARE:
            self.contract(user_id)

    def anonymous_visitor(self) -> None:
        dev = self.device()
        for _ in range(self.rng.choices((1, 2), (75, 25))[0]):
            self.session(dev, self.when())

    # --- output -------------------------------------------------------------------------

    def write(self, path: Path) -> tuple[list[str], Counter[str]]:
        """Write sorted JSON lines; returns the user ids in order of first appearance."""
        self.events.sort(key=lambda item: (item[0], item[1]))
        users: dict[str, None] = {}
        counts: Counter[str] = Counter()
        with path.open("w", encoding="utf-8", newline="\n") as fh:
            for ts, _, body in self._numbered_orders():
                body["timestamp"] = _iso(ts)
                if "userId" in body:
                    users.setdefault(body["userId"], None)
                counts[body.get("event", body["type"])] += 1
                fh.write(json.dumps(body, ensure_ascii=False, separators=(",", ":")) + "\n")
        return list(users), counts

    def _numbered_orders(self) -> list[tuple[int, int, dict[str, Any]]]:
        """Order numbers follow time, as a shop system hands them out."""
        n = 0
        for _, _, body in self.events:
            if body.get("event") == "Order Completed":
                n += 1
                body["properties"]["order_id"] = f"O-{n:06d}"
        return self.events


def _order_count(rng: random.Random) -> int:
    """0–15 orders, most customers few, some many."""
    return min(15, int(rng.expovariate(1 / 3.0)) + (0 if rng.random() < 0.1 else 1))


def _day(ts: int) -> date:
    return datetime.fromtimestamp(ts, UTC).date()


def _first_of_next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_web_events(
    rng: random.Random, today: date, people: list[Person], path: Path
) -> tuple[list[tuple[str, str]], Counter[str]]:
    """Write the web events; returns (userId, person id) in order of first appearance."""
    web = WebEvents(rng, today)
    owners: dict[str, str] = {}
    for p in people:
        if "web" in p.sources and p.web_user_id:
            owners[p.web_user_id] = p.pid
            web.user(p)
    for _ in range(round(len(people) * ANONYMOUS_VISITORS)):
        web.anonymous_visitor()
    users, counts = web.write(path)
    return [(user_id, owners[user_id]) for user_id in users], counts
