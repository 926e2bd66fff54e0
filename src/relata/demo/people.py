"""The true persons behind the demo data: who they are, where they live, whom they live with.

Households are what makes matching hard in practice, so they are planned first: families
sharing one e-mail address and landline, adult twins (same birth date, address and last
name) and fathers and sons of the same name at one address. Each is a different person.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from faker import Faker

from relata.demo import names
from relata.demo.names import Phone

HOUSEHOLD_SHARE = 0.15  # of people, living with family and sharing one family e-mail
PAIR_SHARE = 0.003  # of people, per kind of look-alike pair (twins, father and son)
MOVER_SHARE = 0.08  # of households, with an old address still in older sources
FOREIGN = (("AT", 0.012), ("CH", 0.008))

# fmt: off
_COMMON_STREETS = (
    "Hauptstraße", "Schulstraße", "Gartenstraße", "Bahnhofstraße", "Dorfstraße", "Bergstraße",
    "Birkenweg", "Lindenstraße", "Kirchstraße", "Waldstraße", "Ringstraße", "Schillerstraße",
    "Goethestraße", "Jahnstraße", "Am Sportplatz", "Mühlenweg", "Feldstraße", "Friedhofstraße",
    "Wiesenweg", "Rosenstraße", "Amselweg",
)
# fmt: on
_FOREIGN_CITIES = {
    "AT": (("Wien", "1"), ("Graz", "8"), ("Linz", "4"), ("Salzburg", "5"), ("Innsbruck", "6")),
    "CH": (("Zürich", "8"), ("Basel", "4"), ("Bern", "3"), ("Luzern", "6"), ("St. Gallen", "9")),
}
_AGE_BANDS = (
    (18, 29, 17),
    (30, 39, 17),
    (40, 49, 16),
    (50, 59, 19),
    (60, 69, 16),
    (70, 79, 10),
    (80, 90, 5),
)


@dataclass(frozen=True, slots=True)
class Address:
    street: str
    house_number: str
    postcode: str
    city: str
    country: str  # ISO 3166 alpha-2


@dataclass(slots=True)
class Person:
    index: int
    pid: str
    gender: str  # "m" | "f"
    first_name: str
    last_name: str
    birth_date: date
    address: Address
    household: str | None = None  # "family" | "twins" | "father_son"
    household_id: int | None = None
    old_address: Address | None = None
    email: str | None = None
    alt_email: str | None = None  # own address next to the family one, or an older one
    mobile: Phone | None = None
    landline: Phone | None = None
    old_landline: Phone | None = None
    sources: tuple[str, ...] = ()
    customer_number: str | None = None
    second_customer_number: str | None = None  # a forgotten duplicate shop account
    newsletter_email: str | None = None  # the address subscribed, if any
    web_user_id: str | None = None  # shop number, or "W…" for a web login without shop account


@dataclass
class _Builder:
    fake: Faker
    rng: random.Random
    today: date
    width: int
    people: list[Person] = field(default_factory=list)
    emails: names.EmailRegistry = field(init=False)

    def __post_init__(self) -> None:
        self.emails = names.EmailRegistry(self.rng)

    def person(
        self,
        gender: str,
        first: str,
        last: str,
        born: date,
        address: Address,
        household: str | None = None,
        household_id: int | None = None,
    ) -> Person:
        index = len(self.people) + 1
        p = Person(
            index,
            f"P{index:0{self.width}d}",
            gender,
            first,
            last,
            born,
            address,
            household,
            household_id,
        )
        self.people.append(p)
        return p

    def birth_date(self, age_from: int, age_to: int) -> date:
        """A birth date of someone aged ``age_from`` to ``age_to`` today."""
        latest = _years_before(self.today, age_from)
        earliest = _years_before(self.today, age_to + 1) + timedelta(days=1)
        return earliest + timedelta(days=self.rng.randrange((latest - earliest).days + 1))

    def random_age_birth_date(self) -> date:
        band = self.rng.choices(_AGE_BANDS, weights=[b[2] for b in _AGE_BANDS])[0]
        return self.birth_date(band[0], band[1])

    def first(self, gender: str, born: date) -> str:
        return names.first_name(self.fake, self.rng, gender, born.year)

    def gender(self) -> str:
        return "f" if self.rng.random() < 0.52 else "m"


def _years_before(day: date, years: int) -> date:
    if (day.month, day.day) == (2, 29):
        day = day - timedelta(days=1)
    return day.replace(year=day.year - years)


def _house_number(rng: random.Random) -> str:
    number = str(min(int(rng.expovariate(1 / 25)) + 1, 250))
    return number + rng.choice("abc") if rng.random() < 0.08 else number


def _street(fake: Faker, rng: random.Random) -> str:
    return rng.choice(_COMMON_STREETS) if rng.random() < 0.3 else fake.street_name()


def new_address(fake: Faker, rng: random.Random, country: str | None = None) -> Address:
    if country is None:
        roll = rng.random()
        country = "DE"
        for candidate, share in FOREIGN:
            if roll < share:
                country = candidate
                break
            roll -= share
    if country == "DE":
        return Address(_street(fake, rng), _house_number(rng), fake.postcode(), fake.city(), "DE")
    city, lead = rng.choice(_FOREIGN_CITIES[country])
    postcode = lead + "".join(str(rng.randint(0, 9)) for _ in range(3))
    return Address(_street(fake, rng), _house_number(rng), postcode, city, country)


def _plan_units(rng: random.Random, people: int) -> list[str]:
    """Unit kinds whose sizes add up to ``people``: single, family2, family3, twins, father_son."""
    pairs = max(3, round(people * PAIR_SHARE)) if people >= 50 else 0
    units = ["twins"] * pairs + ["father_son"] * pairs
    left = people - 4 * pairs
    in_family = round(people * HOUSEHOLD_SHARE)
    while in_family >= 2 and left >= 2:
        size = 3 if in_family >= 3 and left >= 3 and rng.random() < 0.2 else 2
        units.append(f"family{size}")
        in_family -= size
        left -= size
    units += ["single"] * left
    rng.shuffle(units)
    return units


def _single(b: _Builder) -> list[Person]:
    gender = b.gender()
    born = b.random_age_birth_date()
    last = names.last_name(b.fake, b.rng)
    return [b.person(gender, b.first(gender, born), last, born, new_address(b.fake, b.rng))]


def _family(b: _Builder, size: int, hid: int) -> list[Person]:
    address = new_address(b.fake, b.rng)
    last = names.last_name(b.fake, b.rng)
    g1 = b.gender()
    g2 = g1 if b.rng.random() < 0.03 else ("m" if g1 == "f" else "f")
    born1 = b.birth_date(40, 70) if size == 3 else b.birth_date(20, 85)
    lo = max(36 if size == 3 else 18, b.today.year - born1.year - 8)
    born2 = b.birth_date(lo, min(90, lo + 16))
    last2 = last if b.rng.random() < 0.8 else names.last_name(b.fake, b.rng)
    members = [
        b.person(g1, b.first(g1, born1), last, born1, address, "family", hid),
        b.person(g2, b.first(g2, born2), last2, born2, address, "family", hid),
    ]
    if size == 3:
        younger = max(born1, born2)
        top = min(30, b.today.year - younger.year - 20)
        born3 = b.birth_date(18, max(18, top))
        g3 = b.gender()
        members.append(b.person(g3, b.first(g3, born3), last, born3, address, "family", hid))
    return members


def _twins(b: _Builder, hid: int) -> list[Person]:
    address = new_address(b.fake, b.rng)
    last = names.last_name(b.fake, b.rng)
    born = b.birth_date(18, 45)
    g1, g2 = b.gender(), b.gender()
    first1 = b.first(g1, born)
    first2 = b.first(g2, born)
    while first2 == first1:
        first2 = names.first_name(b.fake, b.rng, g2, born.year + 1)
    return [
        b.person(g1, first1, last, born, address, "twins", hid),
        b.person(g2, first2, last, born, address, "twins", hid),
    ]


def _father_son(b: _Builder, hid: int) -> list[Person]:
    address = new_address(b.fake, b.rng)
    last = names.last_name(b.fake, b.rng)
    son_born = b.birth_date(18, 32)
    son_age = b.today.year - son_born.year
    father_born = b.birth_date(son_age + 22, min(90, son_age + 40))
    first = b.first("m", father_born)
    return [
        b.person("m", first, last, father_born, address, "father_son", hid),
        b.person("m", first, last, son_born, address, "father_son", hid),
    ]


def _build_units(b: _Builder, units: list[str]) -> list[list[Person]]:
    groups = []
    for hid, kind in enumerate(units, start=1):
        if kind == "single":
            groups.append(_single(b))
        elif kind == "twins":
            groups.append(_twins(b, hid))
        elif kind == "father_son":
            groups.append(_father_son(b, hid))
        else:
            groups.append(_family(b, int(kind[-1]), hid))
    return groups


def _age(p: Person, today: date) -> int:
    return today.year - p.birth_date.year


def _contacts(b: _Builder, group: list[Person]) -> None:
    rng, registry = b.rng, b.emails
    country = group[0].address.country
    shared_landline = names.landline_phone(rng, country) if rng.random() < 0.45 else None
    family = group[0].household == "family"
    family_email = None
    if family:
        local = names.family_local_part(rng, group[0].last_name, [p.first_name for p in group])
        family_email = registry.claim(local)
    for p in group:
        age = _age(p, b.today)
        if family:
            p.email = family_email
            if rng.random() < 0.4:
                p.alt_email = _personal_email(b, p)
        elif rng.random() < (0.9 if age < 70 else 0.55):
            p.email = _personal_email(b, p)
            if rng.random() < 0.08:
                p.alt_email = _personal_email(b, p)
        if rng.random() < (0.85 if age < 65 else 0.55):
            p.mobile = names.mobile_phone(rng, country)
        if len(group) > 1 and shared_landline is not None:
            p.landline = shared_landline
        elif rng.random() < (0.25 if age < 50 else 0.5):
            p.landline = names.landline_phone(rng, country)


def _personal_email(b: _Builder, p: Person) -> str:
    local = names.personal_local_part(b.rng, p.first_name, p.last_name, p.birth_date.year)
    return b.emails.claim(local)


def _move(b: _Builder, group: list[Person]) -> None:
    """The household lived elsewhere before; older sources still have that address."""
    old = new_address(b.fake, b.rng, group[0].address.country)
    old_landline = names.landline_phone(b.rng, old.country)
    for p in group:
        p.old_address = old
        if p.landline is not None:
            p.old_landline = old_landline


def build_people(fake: Faker, rng: random.Random, count: int, today: date) -> list[Person]:
    b = _Builder(fake, rng, today, max(6, len(str(count))))
    groups = _build_units(b, _plan_units(rng, count))
    for group in groups:
        _contacts(b, group)
        if rng.random() < MOVER_SHARE:
            _move(b, group)
    return b.people


def look_alike_pairs(people: list[Person]) -> list[tuple[Person, Person]]:
    """Twins, and fathers and sons of one name: pairs that must stay two persons."""
    pairs: dict[int, list[Person]] = {}
    for p in people:
        if p.household in ("twins", "father_son") and p.household_id is not None:
            pairs.setdefault(p.household_id, []).append(p)
    return [(a, b) for a, b in pairs.values()]
