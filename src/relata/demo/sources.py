"""Where each person appears: which sources, under which shop and web keys.

Most people are in one or two sources; a few in four. Sources that belong together are
chosen together more often than chance: hotline callers and web logins are mostly shop
customers.
"""

from __future__ import annotations

import random

from relata.demo.people import Person, look_alike_pairs

SOURCE_ORDER = ("shop", "pos", "newsletter", "hotline", "coupon", "web")
SOURCE_WEIGHTS = {"shop": 42, "pos": 30, "newsletter": 24, "web": 22, "hotline": 14, "coupon": 14}
# A factor on the weight of the second source once the first is chosen.
AFFINITY = {
    ("shop", "hotline"): 4.0,
    ("hotline", "shop"): 2.0,
    ("shop", "web"): 3.0,
    ("web", "shop"): 2.0,
}
SOURCES_PER_PERSON = ((1, 48), (2, 32), (3, 14), (4, 6))
DUPLICATE_ACCOUNT_SHARE = 0.1  # of shop customers who have a second e-mail address
CALLERS_WITH_ACCOUNT = 0.8  # of hotline callers without shop account who get one
_NEED_EMAIL = ("shop", "newsletter", "web")


def _pick_sources(rng: random.Random, p: Person) -> tuple[str, ...]:
    pool = {s: w for s, w in SOURCE_WEIGHTS.items() if p.email or s not in _NEED_EMAIL}
    k = rng.choices([n for n, _ in SOURCES_PER_PERSON], [w for _, w in SOURCES_PER_PERSON])[0]
    chosen: set[str] = set()
    while pool and len(chosen) < k:
        pick = rng.choices(list(pool), list(pool.values()))[0]
        chosen.add(pick)
        del pool[pick]
        for other in pool:
            pool[other] *= AFFINITY.get((pick, other), 1.0)
    return tuple(s for s in SOURCE_ORDER if s in chosen)


def _callers_are_customers(rng: random.Random, p: Person) -> None:
    """The hotline is the shop's: most callers have a customer account."""
    if "hotline" not in p.sources or "shop" in p.sources or not p.email:
        return
    if rng.random() < CALLERS_WITH_ACCOUNT:
        kept = p.sources if len(p.sources) < 4 else ("hotline", *p.sources[:2])
        p.sources = tuple(s for s in SOURCE_ORDER if s in {*kept, "shop"})


def _share_a_source(rng: random.Random, pair: tuple[Person, Person]) -> None:
    """Look-alike pairs must meet in a source with addresses, or they would be no trap."""
    a, b = pair
    if set(a.sources) & set(b.sources) & {"shop", "pos"}:
        return
    common = "shop" if a.email and b.email and rng.random() < 0.5 else "pos"
    for p in pair:
        kept = p.sources if len(p.sources) < 4 else p.sources[1:]
        p.sources = tuple(s for s in SOURCE_ORDER if s in {*kept, common})


def _one_newsletter_row_per_address(people: list[Person]) -> None:
    """A family address can be subscribed once; the others use their own or stay away."""
    subscribed: set[str | None] = {None}
    for p in people:
        if "newsletter" not in p.sources:
            continue
        address = next((a for a in (p.email, p.alt_email) if a not in subscribed), None)
        if address is None:
            p.sources = tuple(s for s in p.sources if s != "newsletter") or ("pos",)
        else:
            p.newsletter_email = address
            subscribed.add(address)


def _numbers(rng: random.Random, prefix: str, digits: int, count: int) -> list[str]:
    low = 10 ** (digits - 1)
    return [f"{prefix}{n}" for n in rng.sample(range(low, 10 * low), count)]


def _assign_ids(rng: random.Random, people: list[Person]) -> None:
    shop = [p for p in people if "shop" in p.sources]
    twice = [p for p in shop if p.alt_email and rng.random() < DUPLICATE_ACCOUNT_SHARE]
    numbers = iter(_numbers(rng, "K", 6, len(shop) + len(twice)))
    for p in shop:
        p.customer_number = next(numbers)
    for p in twice:
        p.second_customer_number = next(numbers)
    web_only = [p for p in people if "web" in p.sources and "shop" not in p.sources]
    for p, user_id in zip(web_only, _numbers(rng, "W", 7, len(web_only)), strict=True):
        p.web_user_id = user_id
    for p in shop:
        if "web" in p.sources:
            p.web_user_id = p.customer_number


def assign_sources(rng: random.Random, people: list[Person]) -> None:
    """Decide in which sources each person appears, and the keys the shop and web give them."""
    for p in people:
        p.sources = _pick_sources(rng, p)
        _callers_are_customers(rng, p)
    for pair in look_alike_pairs(people):
        _share_a_source(rng, pair)
    _one_newsletter_row_per_address(people)
    _assign_ids(rng, people)
