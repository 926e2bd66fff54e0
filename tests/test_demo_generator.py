"""The demo data generator: files as promised, deterministic, and an exact ground truth."""

from __future__ import annotations

import csv
import json
import random
import tomllib
from collections import Counter, defaultdict
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from faker import Faker

from relata.demo import DemoManifest, DemoStats, generate, generate_with_stats
from relata.demo.people import build_people, look_alike_pairs

Demo = tuple[Path, DemoManifest, DemoStats]
TODAY = date(2026, 5, 15)
PEOPLE = 500

HEADERS = {
    "shop": "Kundennummer,Anrede,Vorname,Nachname,E-Mail,Telefon,Straße,Hausnummer,PLZ,Ort,Land,"
    "Geburtsdatum",
    "pos": "Kartennummer;Name;Vorname;Geburtsdatum;Strasse;PLZ;Ort;Telefon",
    "newsletter": "email;vorname;nachname;angemeldet_am",
    "hotline": "Ticket-ID\tVorname\tNachname\tTelefon\tKundennummer\tAnliegen\tDatum",
    "coupon": "Code,Einloeser_Vorname,Einloeser_Nachname,Mail,Eingeloest,Filiale",
}
FORMATS = {  # source -> (encoding, delimiter, key column)
    "shop": ("utf-8-sig", ",", "Kundennummer"),
    "pos": ("cp1252", ";", "Kartennummer"),
    "newsletter": ("utf-8", ";", "email"),
    "hotline": ("utf-8", "\t", "Ticket-ID"),
    "coupon": ("utf-8", ",", "Code"),
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoManifest, DemoStats]:
    out = tmp_path_factory.mktemp("demo")
    return out, *generate_with_stats(out, people=PEOPLE, seed=42, today=TODAY)


def _rows(out: Path, source: str) -> list[list[str]]:
    encoding, delimiter, _ = FORMATS[source]
    file = {
        "shop": "shop_kunden.csv",
        "pos": "kasse_kundenkarten.csv",
        "newsletter": "newsletter.csv",
        "hotline": "hotline_kontakte.csv",
        "coupon": "gutscheine.csv",
    }[source]
    with (out / file).open(encoding=encoding, newline="") as fh:
        return list(csv.reader(fh, delimiter=delimiter))


def _records(out: Path, source: str) -> list[dict[str, str]]:
    header, *rows = _rows(out, source)
    return [dict(zip(header, row, strict=False)) for row in rows]


def _truth(out: Path) -> list[dict[str, str]]:
    with (out / "truth.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _events(out: Path) -> list[dict]:
    with (out / "web_events.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _pid_of(out: Path) -> dict[tuple[str, str], str]:
    return {(r["source"], r["source_key"]): r["person_id"] for r in _truth(out)}


def test_same_seed_gives_identical_files_and_another_seed_differs(
    demo: Demo, tmp_path: Path
) -> None:
    out, _, _ = demo
    again, other = tmp_path / "again", tmp_path / "other"
    generate(again, people=PEOPLE, seed=42, today=TODAY)
    generate(other, people=PEOPLE, seed=7, today=TODAY)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    for name in names:
        assert (out / name).read_bytes() == (again / name).read_bytes(), name
    for name in ("shop_kunden.csv", "web_events.jsonl", "truth.csv"):
        assert (out / name).read_bytes() != (other / name).read_bytes(), name


def test_manifest_lists_record_sources_before_events(
    demo: Demo,
) -> None:
    out, manifest, _ = demo
    assert [s.name for s in manifest.sources] == [
        "shop",
        "pos",
        "newsletter",
        "hotline",
        "coupon",
        "web",
    ]
    kinds = [s.kind for s in manifest.sources]
    assert kinds == sorted(kinds, key=lambda kind: kind != "records")
    assert (manifest.people, manifest.seed, manifest.truth_file) == (PEOPLE, 42, "truth.csv")
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8")) == json.loads(
        json.dumps(asdict(manifest))
    )
    for source in manifest.sources:
        assert (out / source.file).is_file()
        assert source.mapping is None or (out / source.mapping).is_file()


def test_files_have_the_promised_encoding_delimiter_and_header(
    demo: Demo,
) -> None:
    out, _, _ = demo
    assert (out / "shop_kunden.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    pos_bytes = (out / "kasse_kundenkarten.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):  # umlauts as single cp1252 bytes, not UTF-8
        pos_bytes.decode("utf-8")
    for source, header in HEADERS.items():
        rows = _rows(out, source)
        assert FORMATS[source][1].join(rows[0]) == header
        assert len(rows) > 10


def test_mapping_files_name_existing_columns(demo: Demo) -> None:
    out, manifest, _ = demo
    expected_keys = {
        "pos": "Kartennummer",
        "newsletter": "email",
        "hotline": "Ticket-ID",
        "coupon": "Code",
    }
    for source in manifest.sources:
        if source.mapping is None:
            continue
        mapping = tomllib.loads((out / source.mapping).read_text(encoding="utf-8"))
        header = _rows(out, source.name)[0]
        assert mapping["source_key"] == expected_keys[source.name]
        assert {mapping["source_key"], *mapping["fields"].values()} <= set(header)


def test_truth_covers_every_record_exactly_once(demo: Demo) -> None:
    out, _, _ = demo
    truth = _truth(out)
    pairs = Counter((r["source"], r["source_key"]) for r in truth)
    assert max(pairs.values()) == 1
    for source, (_, _, key) in FORMATS.items():
        keys = [r[key] for r in _records(out, source)]
        assert len(keys) == len(set(keys))
        assert sorted(keys) == sorted(k for s, k in pairs if s == source)
    user_ids = {e["userId"] for e in _events(out) if "userId" in e}
    assert user_ids == {k for s, k in pairs if s == "web"}
    people = {r["person_id"] for r in truth}
    assert len(people) == PEOPLE
    assert all(pid.startswith("P") and pid[1:].isdigit() for pid in people)
    sources_per_person = Counter(
        len({s for s, _ in group}) for group in _group_by_person(truth).values()
    )
    assert set(sources_per_person) <= {1, 2, 3, 4}
    assert sources_per_person[1] + sources_per_person[2] > PEOPLE * 0.6


def _group_by_person(truth: list[dict[str, str]]) -> dict[str, set[tuple[str, str]]]:
    groups: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for r in truth:
        groups[r["person_id"]].add((r["source"], r["source_key"]))
    return groups


def test_invalid_rows_are_marked_and_really_invalid(
    demo: Demo,
) -> None:
    out, _, _ = demo
    invalid = {(r["source"], r["source_key"]) for r in _truth(out) if r["valid"] == "0"}
    assert {s for s, _ in invalid} == {"shop", "pos", "hotline"}
    for row in _records(out, "pos"):
        bad = ("pos", row["Kartennummer"]) in invalid
        if row["Geburtsdatum"]:
            parses = _parses(row["Geburtsdatum"], "%d.%m.%Y")
            assert parses != bad
    shop = _rows(out, "shop")
    for row in shop[1:]:
        assert (len(row) < len(shop[0])) == (("shop", row[0]) in invalid)
    for row in _records(out, "hotline"):
        empty = not any(row[c] for c in ("Vorname", "Nachname", "Telefon", "Kundennummer"))
        assert empty == (("hotline", row["Ticket-ID"]) in invalid)


def _parses(text: str, fmt: str) -> bool:
    try:
        datetime.strptime(text, fmt)
    except ValueError:
        return False
    return True


def test_households_share_one_email_across_persons(
    demo: Demo,
) -> None:
    out, _, _ = demo
    pid_of = _pid_of(out)
    persons_by_email: dict[str, set[str]] = defaultdict(set)
    for source, column in (("shop", "E-Mail"), ("newsletter", "email"), ("coupon", "Mail")):
        key = FORMATS[source][2]
        for row in _records(out, source):
            if row.get(column):
                persons_by_email[row[column].lower()].add(pid_of[(source, row[key])])
    shared = [email for email, pids in persons_by_email.items() if len(pids) > 1]
    assert shared
    assert any("fam" in email for email in shared)


def test_look_alikes_are_built_as_promised() -> None:
    rng = random.Random(3)
    fake = Faker("de_DE")
    fake.seed_instance(3)
    people = build_people(fake, rng, PEOPLE, TODAY)
    pairs = look_alike_pairs(people)
    kinds = Counter(a.household for a, _ in pairs)
    assert kinds["twins"] >= 3 and kinds["father_son"] >= 3
    for a, b in pairs:
        assert a.pid != b.pid and a.address == b.address and a.last_name == b.last_name
        if a.household == "twins":
            assert a.birth_date == b.birth_date and a.first_name != b.first_name
        else:
            assert a.first_name == b.first_name
            assert abs(a.birth_date - b.birth_date).days > 20 * 365
    families: dict[int | None, set[str | None]] = defaultdict(set)
    for p in people:
        if p.household == "family":
            families[p.household_id].add(p.email)
    assert 0.1 < sum(p.household == "family" for p in people) / PEOPLE < 0.2
    assert all(len(emails) == 1 and None not in emails for emails in families.values())


def _seen_in_shop_and_pos(out: Path) -> dict[str, list[tuple[str, ...]]]:
    """person -> (first, last, birth date, postcode) of each shop and POS row, case-folded."""
    pid_of = _pid_of(out)
    seen: dict[str, list[tuple[str, str, str, str]]] = defaultdict(list)
    for row in _records(out, "shop"):
        pid = pid_of[("shop", row["Kundennummer"])]
        born = row.get("Geburtsdatum", "")
        seen[pid].append((row["Vorname"], row["Nachname"], born, row.get("PLZ", "")))
    for row in _records(out, "pos"):
        pid = pid_of[("pos", row["Kartennummer"])]
        born = row["Geburtsdatum"]
        if _parses(born, "%d.%m.%Y"):
            born = datetime.strptime(born, "%d.%m.%Y").date().isoformat()
        seen[pid].append((row["Vorname"], row["Name"], born, row["PLZ"].zfill(5)))
    return {pid: [tuple(v.casefold() for v in r) for r in rows] for pid, rows in seen.items()}


def test_twins_and_father_son_pairs_meet_in_a_source_as_different_persons(
    demo: Demo,
) -> None:
    out, _, stats = demo
    by_person = _group_by_person(_truth(out))
    visible: Counter[str] = Counter()
    seen = _seen_in_shop_and_pos(out)
    for kind, a, b in stats.look_alikes:
        assert a != b
        assert {s for s, _ in by_person[a]} & {s for s, _ in by_person[b]}
        for ra in seen.get(a, []):
            for rb in seen.get(b, []):
                same_place = ra[1] == rb[1] and ra[3] == rb[3]
                born_alike = ra[2] == rb[2] or not (ra[2] and rb[2])
                if kind == "twins" and same_place and born_alike and ra[0] != rb[0]:
                    visible[kind] += 1
                if kind == "father_son" and same_place and ra[0] == rb[0]:
                    visible[kind] += 1
    assert visible["twins"] and visible["father_son"]


def test_events_are_segment_style_json_sorted_by_time(
    demo: Demo,
) -> None:
    out, _, _ = demo
    events = _events(out)
    assert PEOPLE * 3 < len(events) < PEOPLE * 10
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps)
    earliest = datetime(TODAY.year, TODAY.month, TODAY.day, tzinfo=UTC) - timedelta(days=731)
    for e in events:
        assert e["type"] in {"page", "track", "identify"}
        assert e["messageId"] and ("userId" in e or "anonymousId" in e)
        moment = datetime.strptime(e["timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert earliest <= moment < earliest + timedelta(days=731)
    assert len({e["messageId"] for e in events}) == len(events)
    names = Counter(e.get("event", e["type"]) for e in events)
    assert {"page", "identify", "Product Viewed", "Order Completed", "Contract Signed"} <= set(
        names
    )


def test_identify_links_anonymous_id_to_user_id(demo: Demo) -> None:
    out, _, _ = demo
    events = _events(out)
    linked: dict[str, str] = {}
    for e in events:
        if e["type"] == "identify":
            assert e["anonymousId"] and e["userId"][0] in "KW" and e["traits"]["email"]
            linked[e["anonymousId"]] = e["userId"]
        elif e.get("anonymousId") in linked:
            assert e["userId"] == linked[e["anonymousId"]]
    assert linked
    anonymous_forever = {e["anonymousId"] for e in events if "anonymousId" in e} - set(linked)
    assert anonymous_forever
    pid_of = _pid_of(out)
    shop_keys = {k for s, k in pid_of if s == "shop"}
    for user_id in set(linked.values()):
        if user_id.startswith("K"):
            assert user_id in shop_keys
            assert pid_of[("web", user_id)] == pid_of[("shop", user_id)]


def test_orders_carry_products_and_totals(demo: Demo) -> None:
    out, _, _ = demo
    orders = [e for e in _events(out) if e.get("event") == "Order Completed"]
    assert orders
    for e in orders:
        props = e["properties"]
        assert e["userId"].startswith("K") and props["currency"] == "EUR"
        total = sum(line["price"] * line["quantity"] for line in props["products"])
        assert props["total"] == pytest.approx(total)
    ids = [e["properties"]["order_id"] for e in orders]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_a_small_run_works(tmp_path: Path) -> None:
    manifest = generate(tmp_path, people=3, seed=1, today=TODAY)
    truth = _truth(tmp_path)
    assert manifest.people == 3
    assert {r["person_id"] for r in truth} == {"P000001", "P000002", "P000003"}
    with pytest.raises(ValueError):
        generate(tmp_path, people=0)
