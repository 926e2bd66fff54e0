"""A small German retail catalogue for the demo shop, and its contract products."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    name: str
    category: str
    price: float


_CATALOGUE = {
    "Schuhe": (
        ("Laufschuh Pegasus", 59.90),
        ("Trekkingschuh Alpin GTX", 129.00),
        ("Sneaker Classic Weiß", 49.95),
        ("Hausschuh Filz", 24.99),
        ("Gummistiefel", 29.90),
        ("Lederstiefelette", 89.00),
        ("Sandale Komfort", 39.95),
        ("Kinder-Turnschuh", 34.90),
    ),
    "Bekleidung": (
        ("Funktionsjacke Herren", 119.00),
        ("Strickpullover Wolle", 69.90),
        ("Jeans Slim Fit", 49.90),
        ("T-Shirt Bio-Baumwolle 2er-Pack", 19.99),
        ("Regenjacke Damen", 79.00),
        ("Fleecejacke", 44.90),
        ("Socken 5er-Pack", 12.99),
        ("Wintermütze", 14.95),
    ),
    "Sport & Freizeit": (
        ("Yogamatte rutschfest", 29.99),
        ("Hantelset 20 kg", 64.90),
        ("Fahrradhelm Urban", 54.90),
        ("Trinkflasche Edelstahl", 17.95),
        ("Rucksack 25 l", 59.00),
        ("Springseil", 9.99),
        ("Tourenzelt 2 Personen", 149.00),
    ),
    "Haushalt & Küche": (
        ("Kaffeevollautomat Barista", 449.00),
        ("Wasserkocher 1,7 l", 34.99),
        ("Pfannenset 3-teilig", 79.90),
        ("Messerblock 6-teilig", 99.00),
        ("Handtuchset 4-teilig", 29.95),
        ("Bettwäsche Renforcé 135x200", 39.90),
        ("Vorratsdosen 5er-Set", 19.90),
        ("Staubsauger beutellos", 159.00),
    ),
    "Elektronik": (
        ("Bluetooth-Kopfhörer", 79.99),
        ("Powerbank 20.000 mAh", 29.99),
        ("Smartwatch Fit 3", 149.00),
        ("USB-C Ladegerät 65 W", 34.90),
        ("Tischleuchte LED", 44.95),
        ("Bluetooth-Lautsprecher", 59.90),
        ("Funk-Wetterstation", 39.99),
        ("E-Book-Reader", 119.00),
    ),
    "Drogerie & Pflege": (
        ("Elektrische Zahnbürste", 69.99),
        ("Gesichtscreme Hyaluron", 14.95),
        ("Duschgel Sensitiv 3er-Pack", 7.49),
        ("Haartrockner Ionic", 49.90),
        ("Sonnenspray LSF 50", 11.99),
        ("Rasierer Nass 5-Klingen", 12.49),
        ("Handcreme Urea", 5.95),
    ),
    "Spielwaren": (
        ("Holzeisenbahn Starterset", 49.99),
        ("Puzzle 1000 Teile", 14.99),
        ("Brettspiel Die Siedler", 34.99),
        ("Plüschbär Bruno", 19.95),
        ("Klemmbaustein-Set Feuerwehr", 59.99),
        ("Malset 60-teilig", 24.90),
        ("Kinderroller faltbar", 69.00),
    ),
    "Garten": (
        ("Gartenschlauch 25 m", 32.90),
        ("Akku-Heckenschere", 119.00),
        ("Hochbeet Lärche", 139.00),
        ("Blumenerde 40 l", 8.99),
        ("Gartenstuhl klappbar", 44.90),
        ("Solar-Lichterkette", 19.99),
        ("Rasensamen 1 kg", 16.95),
    ),
}

PRODUCTS: tuple[Product, ...] = tuple(
    Product(f"SKU-{1001 + n}", name, category, price)
    for n, (category, name, price) in enumerate(
        (category, name, price) for category, items in _CATALOGUE.items() for name, price in items
    )
)

CATEGORY_SLUGS = {
    "Schuhe": "schuhe",
    "Bekleidung": "bekleidung",
    "Sport & Freizeit": "sport-freizeit",
    "Haushalt & Küche": "haushalt-kueche",
    "Elektronik": "elektronik",
    "Drogerie & Pflege": "drogerie-pflege",
    "Spielwaren": "spielwaren",
    "Garten": "garten",
}


@dataclass(frozen=True, slots=True)
class ContractProduct:
    product_id: str
    name: str
    category: str
    amount: float  # per month


CONTRACTS = (
    ContractProduct("PREMIUM", "Premium-Mitgliedschaft", "Mitgliedschaft", 9.99),
    ContractProduct("VERSANDFLAT", "Versandflatrate", "Service", 2.99),
)
