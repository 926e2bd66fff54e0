"""Write the demo data set: five record sources, one event source and the ground truth.

Everything is drawn from one ``random.Random(seed)`` and one ``Faker("de_DE")`` seeded
with the same number, in a fixed order, so a seed (with a given Faker version and
``today``) always gives byte-identical files.
"""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

from faker import Faker

from relata.demo import records
from relata.demo.events import build_web_events
from relata.demo.people import Person, build_people, look_alike_pairs
from relata.demo.sources import assign_sources

MAX_PEOPLE = 1_000_000  # shop customer numbers have six digits
TRUTH_FILE = "truth.csv"
MANIFEST_FILE = "manifest.json"
TruthRow = tuple[str, str, str, int]  # source, source key, person id, valid (0 or 1)


@dataclass(frozen=True)
class DemoSource:
    name: str
    channel: str
    trust: int
    file: str  # relative to the output directory
    mapping: str | None  # TOML mapping file relative to the output directory; None: auto
    kind: str  # "records" (rows of people) or "events"


@dataclass(frozen=True)
class DemoManifest:
    people: int
    seed: int
    sources: tuple[DemoSource, ...]  # record sources first: import in this order
    truth_file: str


@dataclass
class DemoStats:
    """What was generated, for reports and benchmarks; not written to disk."""

    records: dict[str, int] = field(default_factory=dict)
    invalid: dict[str, int] = field(default_factory=dict)
    events: Counter[str] = field(default_factory=Counter)
    dirt: Counter[tuple[str, str]] = field(default_factory=Counter)
    households: Counter[str] = field(default_factory=Counter)
    # (kind, person, person) of twins and fathers and sons: different persons that look alike
    look_alikes: list[tuple[str, str, str]] = field(default_factory=list)


SOURCES = (
    DemoSource("shop", "shop", 80, "shop_kunden.csv", None, "records"),
    DemoSource("pos", "pos", 60, "kasse_kundenkarten.csv", "pos.mapping.toml", "records"),
    DemoSource(
        "newsletter", "newsletter", 40, "newsletter.csv", "newsletter.mapping.toml", "records"
    ),
    DemoSource("hotline", "hotline", 50, "hotline_kontakte.csv", "hotline.mapping.toml", "records"),
    DemoSource("coupon", "coupon", 30, "gutscheine.csv", "coupon.mapping.toml", "records"),
    DemoSource("web", "web", 20, "web_events.jsonl", None, "events"),
)

# mapping file -> (column holding the source key, canonical field -> column)
MAPPINGS = {
    # Only to name the key: the headers alone would make "Kartennummer" a field, not the key.
    "pos.mapping.toml": (
        "Kartennummer",
        {
            "loyalty_card": "Kartennummer",
            "last_name": "Name",
            "first_name": "Vorname",
            "birth_date": "Geburtsdatum",
            "street": "Strasse",
            "postcode": "PLZ",
            "city": "Ort",
            "phone": "Telefon",
        },
    ),
    "newsletter.mapping.toml": (
        "email",
        {"email": "email", "first_name": "vorname", "last_name": "nachname"},
    ),
    "hotline.mapping.toml": (
        "Ticket-ID",
        {
            "first_name": "Vorname",
            "last_name": "Nachname",
            "phone": "Telefon",
            "customer_number": "Kundennummer",
        },
    ),
    "coupon.mapping.toml": (
        "Code",
        {"first_name": "Einloeser_Vorname", "last_name": "Einloeser_Nachname", "email": "Mail"},
    ),
}


def generate(
    out_dir: Path, people: int = 20_000, seed: int = 42, today: date | None = None
) -> DemoManifest:
    """Write the demo files, ``manifest.json`` and ``truth.csv`` to ``out_dir``."""
    return generate_with_stats(out_dir, people, seed, today)[0]


def generate_with_stats(
    out_dir: Path, people: int = 20_000, seed: int = 42, today: date | None = None
) -> tuple[DemoManifest, DemoStats]:
    """:func:`generate`, also returning what was generated (counts, dirt, look-alikes)."""
    if not 1 <= people <= MAX_PEOPLE:
        raise ValueError(f"people must be between 1 and {MAX_PEOPLE:,}")
    today = today or date.today()
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    fake = Faker("de_DE")
    fake.seed_instance(seed)

    persons = build_people(fake, rng, people, today)
    assign_sources(rng, persons)
    stats = DemoStats(
        households=Counter(p.household or "single" for p in persons),
        look_alikes=[(a.household or "", a.pid, b.pid) for a, b in look_alike_pairs(persons)],
    )
    truth: list[TruthRow] = []
    for source in SOURCES:
        truth += _write_source(source, out_dir / source.file, rng, today, persons, stats)

    for name, (key, fields) in MAPPINGS.items():
        (out_dir / name).write_text(_mapping_toml(key, fields), encoding="utf-8")
    _write_truth(out_dir / TRUTH_FILE, truth)
    manifest = DemoManifest(people, seed, SOURCES, TRUTH_FILE)
    manifest_json = json.dumps(asdict(manifest), indent=2, ensure_ascii=False) + "\n"
    (out_dir / MANIFEST_FILE).write_text(manifest_json, encoding="utf-8")
    return manifest, stats


def _write_source(
    source: DemoSource,
    path: Path,
    rng: random.Random,
    today: date,
    persons: list[Person],
    stats: DemoStats,
) -> list[TruthRow]:
    if source.kind == "events":
        users, stats.events = build_web_events(rng, today, persons, path)
        stats.records[source.name], stats.invalid[source.name] = len(users), 0
        return [(source.name, user_id, pid, 1) for user_id, pid in users]
    rf = records.BUILDERS[source.name](records.Context(rng, today, stats.dirt), persons)
    rf.write(path)
    stats.records[source.name] = len(rf.rows)
    stats.invalid[source.name] = rf.valid.count(False)
    return [
        (source.name, key, pid, int(ok))
        for key, pid, ok in zip(rf.keys, rf.pids, rf.valid, strict=True)
    ]


def _mapping_toml(key: str, fields: dict[str, str]) -> str:
    lines = [
        "# relata import mapping: canonical field = column of the file",
        "",
        f"source_key = {json.dumps(key)}",
        "",
        "[fields]",
    ]
    lines += [f"{name} = {json.dumps(column)}" for name, column in fields.items()]
    return "\n".join(lines) + "\n"


def _write_truth(path: Path, rows: list[TruthRow]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["source", "source_key", "person_id", "valid"])
        writer.writerows(rows)
