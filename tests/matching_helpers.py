"""Synthetic German people with duplicates, and a model trained on them once a session."""

from __future__ import annotations

import random
from functools import cache
from typing import Any

from faker import Faker

from relata.demo.dirt import typo
from relata.demo.names import transliterate


def people(n: int, seed: int = 7) -> list[dict[str, Any]]:
    fake = Faker("de_DE")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    found = []
    for _ in range(n):
        found.append(
            {
                "first_name": fake.first_name(),
                "last_name": fake.last_name(),
                "birth_date": fake.date_of_birth(minimum_age=18, maximum_age=90).isoformat(),
                "email": fake.email(),
                "phone": f"+4917{rng.randrange(10**8, 10**9)}",
                "street": fake.street_name(),
                "house_number": str(rng.randint(1, 99)),
                "postcode": fake.postcode(),
                "city": fake.city(),
            }
        )
    return found


def dirty(rng: random.Random, person: dict[str, Any]) -> dict[str, Any]:
    """A second record of the same person, as another system wrote it down."""
    record = dict(person)
    roll = rng.random()
    if roll < 0.25:
        record["first_name"] = typo(rng, record["first_name"])
    elif roll < 0.4:
        record["last_name"] = transliterate(record["last_name"])
    elif roll < 0.5:
        record["first_name"], record["last_name"] = record["last_name"], record["first_name"]
    if rng.random() < 0.2:
        record["email"] = record["email"].split("@")[0] + "@web.de"
    if rng.random() < 0.15:
        record["phone"] = f"+4930{rng.randrange(10**6, 10**7)}"
    if rng.random() < 0.15:
        record["street"], record["house_number"] = "Hauptstraße", str(rng.randint(1, 99))
    born = record["birth_date"]
    if rng.random() < 0.1 and int(born[8:]) < 28:  # a day off by one: a typo
        record["birth_date"] = f"{born[:8]}{int(born[8:]) + 1:02d}"
    for field in ("email", "phone", "street", "house_number", "birth_date"):
        if rng.random() < 0.3:
            record.pop(field)
    return record


def records(n: int, seed: int = 7) -> list[tuple[str, dict[str, Any]]]:
    """(person id, record): every person once, two in five twice or three times."""
    rng = random.Random(seed)
    found = []
    for i, person in enumerate(people(n, seed)):
        found.append((f"P{i}", person))
        for _ in range(rng.choice((0, 0, 0, 1, 2))):
            found.append((f"P{i}", dirty(rng, person)))
    return found


@cache
def trained() -> Any:
    from relata.identity.matching import engine, rows

    built = rows.build((i, data) for i, (_, data) in enumerate(records(1500), start=1))
    table = engine.arrow_table(built.table_columns())
    return engine.train(table, u_max_pairs=300_000)
