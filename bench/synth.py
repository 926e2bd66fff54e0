"""Fast synthetic German customer rows for benchmarks (not the demo's realism)."""

from __future__ import annotations

import csv
import random
from pathlib import Path

FIRST = [
    "Anna",
    "Jürgen",
    "Lena",
    "Lukas",
    "Mia",
    "Jonas",
    "Sophie",
    "Leon",
    "Marie",
    "Paul",
    "Emma",
    "Felix",
    "Hannah",
    "Maximilian",
    "Lea",
    "Elias",
    "Clara",
    "Noah",
    "Ida",
    "Ben",
]
LAST = [
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Schäfer",
    "Koch",
    "Bauer",
    "Richter",
    "Klein",
    "Wolf",
    "Schröder",
    "Neumann",
    "Schwarz",
    "Zimmermann",
    "Braun",
    "Krüger",
    "Hofmann",
    "Hartmann",
    "Lange",
]
STREETS = [
    "Hauptstr.",
    "Bahnhofstraße",
    "Lindenweg",
    "Gartenstraße",
    "Am Markt",
    "Schulstr.",
    "Dorfstraße",
    "Bergweg",
    "Kirchplatz",
    "Goethestraße",
]
CITIES = [
    ("10115", "Berlin"),
    ("80331", "München"),
    ("50667", "Köln"),
    ("20095", "Hamburg"),
    ("01067", "Dresden"),
    ("60311", "Frankfurt am Main"),
    ("70173", "Stuttgart"),
]
HEADER = [
    "Kundennummer",
    "Vorname",
    "Nachname",
    "E-Mail",
    "Telefon",
    "Straße",
    "PLZ",
    "Ort",
    "Geburtsdatum",
]


def rows(n: int, seed: int = 7, duplicate_share: float = 0.1):
    """``n`` rows; a share of them repeat an earlier person's e-mail under a new number."""
    rnd = random.Random(seed)
    for i in range(n):
        person = rnd.randrange(i) if i and rnd.random() < duplicate_share else i
        p = random.Random(person)
        first, last = p.choice(FIRST), p.choice(LAST)
        postcode, city = p.choice(CITIES)
        yield [
            f"K{i:08d}",
            first,
            last,
            f"{first}.{last}{person}@example.de".lower(),
            f"0171 {person % 10_000_000:07d}",
            f"{p.choice(STREETS)} {p.randrange(1, 200)}",
            postcode,
            city,
            f"{p.randrange(1, 29):02d}.{p.randrange(1, 13):02d}.{p.randrange(1930, 2005)}",
        ]


def write_csv(path: Path, n: int) -> Path:
    with path.open("w", newline="", encoding="cp1252") as fh:
        writer = csv.writer(fh, delimiter=";")
        writer.writerow(HEADER)
        writer.writerows(rows(n))
    return path
