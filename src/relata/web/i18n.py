"""The UI's two languages: message catalogues, choosing a language, dates and money. Pure."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

LANGUAGES = ("de", "en")
DEFAULT = "de"
COOKIE = "relata_lang"

try:
    # The people using relata work in German-speaking countries: times read as theirs.
    DISPLAY_TZ: dt.tzinfo = ZoneInfo("Europe/Berlin")
except ZoneInfoNotFoundError:  # a system without a time zone database
    DISPLAY_TZ = dt.UTC

MESSAGES: dict[str, dict[str, str]] = {
    "de": {
        "lang.name": "Deutsch",
        "lang.switch": "English",
        "lang.switch_label": "Switch to English",
        "nav.skip": "Zum Inhalt springen",
        "nav.search": "Kundensuche",
        "tagline": "Eine Wahrheit über jeden Kunden",
        "search.title": "Kundensuche",
        "search.label": "Suche nach Name, E-Mail, Telefon, Kundennummer oder Karte",
        "search.placeholder": "z. B. Müller, anna@example.de, K100023",
        "search.submit": "Suchen",
        "search.intro": "Geben Sie einen Namen, eine E-Mail-Adresse, eine Telefonnummer, "
        "eine Kundennummer oder eine Kundenkartennummer ein. Ein Klick auf einen Treffer "
        "öffnet die 360°-Sicht des Kunden.",
        "search.none": "Keine Kunden zu „{q}“ gefunden. Prüfen Sie die Schreibweise "
        "oder suchen Sie nach E-Mail-Adresse oder Kundennummer.",
        "search.count": "{n} Treffer zu „{q}“",
        "search.caption": "Suchergebnisse",
        "col.name": "Name",
        "col.birth_date": "Geburtsdatum",
        "col.email": "E-Mail",
        "col.place": "PLZ und Ort",
        "col.customer_number": "Kundennummer",
        "customer.anonymous": "Anonymer Besucher",
        "customer.id": "Kunden-ID",
        "customer.age": "{n} Jahre",
        "customer.merged_notice": "Kunde {old} wurde mit diesem Kunden zusammengeführt; "
        "Sie sehen den zusammengeführten Datensatz.",
        "customer.since": "Erfasst am",
        "customer.updated": "Aktualisiert",
        "golden.title": "Stammdaten",
        "golden.hint": "Jeder Wert nennt seine Herkunft: Quelle, Schlüssel des Quelldatensatzes "
        "und Stand.",
        "golden.field": "Feld",
        "golden.value": "Wert",
        "golden.provenance": "Herkunft",
        "golden.empty": "Noch keine Stammdaten: bisher ist nur anonymes Verhalten bekannt.",
        "golden.rule.trust": "vertrauenswürdigste Quelle",
        "golden.rule.recent": "neueste Angabe",
        "golden.rule.only": "einzige Quelle",
        "golden.provenance_title": "Quelle {source}, Schlüssel {key}, Stand {at}, Regel: {rule}",
        "field.first_name": "Vorname",
        "field.last_name": "Nachname",
        "field.birth_date": "Geburtsdatum",
        "field.gender": "Geschlecht",
        "field.company": "Firma",
        "field.email": "E-Mail",
        "field.phone": "Telefon",
        "field.street": "Straße",
        "field.house_number": "Hausnummer",
        "field.postcode": "PLZ",
        "field.city": "Ort",
        "field.country": "Land",
        "field.customer_number": "Kundennummer",
        "field.loyalty_card": "Kundenkarte",
        "gender.m": "männlich",
        "gender.f": "weiblich",
        "gender.d": "divers",
        "ident.title": "Identifikatoren",
        "ident.kind": "Art",
        "ident.value": "Wert",
        "ident.sources": "Gesehen in",
        "ident.empty": "Keine Identifikatoren.",
        "kind.email": "E-Mail",
        "kind.phone": "Telefon",
        "kind.customer_number": "Kundennummer",
        "kind.loyalty_card": "Kundenkarte",
        "kind.anonymous_id": "Anonyme ID",
        "kind.external_id": "Quell-ID",
        "records.title": "Quelldatensätze",
        "records.empty": "Keine Quelldatensätze.",
        "records.data": "Daten",
        "records.attributes": "Weitere Merkmale",
        "records.created": "Angelegt",
        "records.updated": "Geändert",
        "records.none": "keine",
        "holdings.title": "Käufe und Verträge",
        "holdings.empty": "Keine Käufe oder Verträge.",
        "holdings.shown": "Die neuesten {n} von {total} werden angezeigt.",
        "holdings.kind": "Art",
        "holdings.product": "Produkt",
        "holdings.reference": "Referenz",
        "holdings.quantity": "Menge",
        "holdings.amount": "Betrag",
        "holdings.status": "Status",
        "holdings.started": "Seit",
        "holdings.source": "Quelle",
        "holding.purchase": "Kauf",
        "holding.contract": "Vertrag",
        "status.completed": "abgeschlossen",
        "status.active": "aktiv",
        "status.ended": "beendet",
        "timeline.title": "Zeitleiste",
        "timeline.hint": "Neueste Ereignisse zuerst.",
        "timeline.empty": "Keine Ereignisse.",
        "timeline.older": "Ältere Ereignisse",
        "timeline.newest": "Zurück zu den neuesten Ereignissen",
        "timeline.details": "Details",
        "timeline.from": "von {source}",
        "event.identify": "Profil aktualisiert",
        "event.page": "Seitenaufruf",
        "event.alias": "Kennungen verknüpft",
        "type.identify": "Profil",
        "type.track": "Ereignis",
        "type.page": "Seite",
        "type.alias": "Alias",
        "type.system": "System",
        "event.Product Viewed": "Produkt angesehen",
        "event.Order Completed": "Bestellung abgeschlossen",
        "event.Contract Signed": "Vertrag abgeschlossen",
        "event.Contract Cancelled": "Vertrag gekündigt",
        "event.Customer Merged": "Kunden zusammengeführt",
        "event.Customer Unmerged": "Zusammenführung rückgängig gemacht",
        "error.title": "Fehler",
        "error.not_found": "Kunde nicht gefunden",
        "error.not_found_text": "Es gibt keinen Kunden mit der ID „{id}“.",
        "error.bad_cursor": "Ungültiger Link zum Blättern",
        "error.bad_cursor_text": "Der Link zu älteren Ereignissen ist ungültig oder beschädigt.",
        "error.page_not_found": "Seite nicht gefunden",
        "error.back": "Zur Kundensuche",
        "footer.note": "relata – Kundendatenplattform. Zeiten in deutscher Ortszeit.",
    },
    "en": {
        "lang.name": "English",
        "lang.switch": "Deutsch",
        "lang.switch_label": "Auf Deutsch umschalten",
        "nav.skip": "Skip to content",
        "nav.search": "Customer search",
        "tagline": "One truth about every customer",
        "search.title": "Customer search",
        "search.label": "Search by name, e-mail, phone, customer number or card",
        "search.placeholder": "e.g. Müller, anna@example.de, K100023",
        "search.submit": "Search",
        "search.intro": "Enter a name, an e-mail address, a phone number, a customer number "
        "or a loyalty card number. Click a result to open the customer's 360° view.",
        "search.none": "No customers found for “{q}”. Check the spelling or search by "
        "e-mail address or customer number.",
        "search.count": "{n} results for “{q}”",
        "search.caption": "Search results",
        "col.name": "Name",
        "col.birth_date": "Date of birth",
        "col.email": "E-mail",
        "col.place": "Postcode and city",
        "col.customer_number": "Customer number",
        "customer.anonymous": "Anonymous visitor",
        "customer.id": "Customer ID",
        "customer.age": "{n} years",
        "customer.merged_notice": "Customer {old} was merged into this customer; "
        "you are looking at the merged record.",
        "customer.since": "Recorded on",
        "customer.updated": "Updated",
        "golden.title": "Golden record",
        "golden.hint": "Every value names where it came from: source, source record key and date.",
        "golden.field": "Field",
        "golden.value": "Value",
        "golden.provenance": "Provenance",
        "golden.empty": "No master data yet: only anonymous behaviour is known so far.",
        "golden.rule.trust": "most trusted source",
        "golden.rule.recent": "most recent value",
        "golden.rule.only": "only source",
        "golden.provenance_title": "Source {source}, key {key}, as of {at}, rule: {rule}",
        "field.first_name": "First name",
        "field.last_name": "Last name",
        "field.birth_date": "Date of birth",
        "field.gender": "Gender",
        "field.company": "Company",
        "field.email": "E-mail",
        "field.phone": "Phone",
        "field.street": "Street",
        "field.house_number": "House number",
        "field.postcode": "Postcode",
        "field.city": "City",
        "field.country": "Country",
        "field.customer_number": "Customer number",
        "field.loyalty_card": "Loyalty card",
        "gender.m": "male",
        "gender.f": "female",
        "gender.d": "diverse",
        "ident.title": "Identifiers",
        "ident.kind": "Kind",
        "ident.value": "Value",
        "ident.sources": "Seen in",
        "ident.empty": "No identifiers.",
        "kind.email": "E-mail",
        "kind.phone": "Phone",
        "kind.customer_number": "Customer number",
        "kind.loyalty_card": "Loyalty card",
        "kind.anonymous_id": "Anonymous ID",
        "kind.external_id": "Source ID",
        "records.title": "Source records",
        "records.empty": "No source records.",
        "records.data": "Data",
        "records.attributes": "Other attributes",
        "records.created": "Created",
        "records.updated": "Updated",
        "records.none": "none",
        "holdings.title": "Purchases and contracts",
        "holdings.empty": "No purchases or contracts.",
        "holdings.shown": "Showing the newest {n} of {total}.",
        "holdings.kind": "Kind",
        "holdings.product": "Product",
        "holdings.reference": "Reference",
        "holdings.quantity": "Quantity",
        "holdings.amount": "Amount",
        "holdings.status": "Status",
        "holdings.started": "Since",
        "holdings.source": "Source",
        "holding.purchase": "Purchase",
        "holding.contract": "Contract",
        "status.completed": "completed",
        "status.active": "active",
        "status.ended": "ended",
        "timeline.title": "Timeline",
        "timeline.hint": "Newest events first.",
        "timeline.empty": "No events.",
        "timeline.older": "Older events",
        "timeline.newest": "Back to the newest events",
        "timeline.details": "Details",
        "timeline.from": "from {source}",
        "event.identify": "Profile updated",
        "event.page": "Page view",
        "event.alias": "Identities linked",
        "type.identify": "Profile",
        "type.track": "Event",
        "type.page": "Page",
        "type.alias": "Alias",
        "type.system": "System",
        "event.Product Viewed": "Product viewed",
        "event.Order Completed": "Order completed",
        "event.Contract Signed": "Contract signed",
        "event.Contract Cancelled": "Contract cancelled",
        "event.Customer Merged": "Customers merged",
        "event.Customer Unmerged": "Merge undone",
        "error.title": "Error",
        "error.not_found": "Customer not found",
        "error.not_found_text": "There is no customer with the ID “{id}”.",
        "error.bad_cursor": "Invalid paging link",
        "error.bad_cursor_text": "The link to older events is invalid or damaged.",
        "error.page_not_found": "Page not found",
        "error.back": "Back to customer search",
        "footer.note": "relata – customer data platform. Times in German local time.",
    },
}

_CURRENCY_SIGNS = {"EUR": "€", "USD": "$", "GBP": "£"}


def choose(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    """``?lang=`` first, then the cookie, then the browser's preference, then German."""
    for given in (query, cookie):
        if given in LANGUAGES:
            return given
    return from_accept_language(accept_language or "")


def from_accept_language(header: str) -> str:
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else DEFAULT


def _group(digits: str, sep: str) -> str:
    head = len(digits) % 3 or 3
    parts = [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
    return sep.join(parts)


@dataclass(frozen=True, slots=True)
class Locale:
    """Everything a template needs to speak one language."""

    lang: str

    @property
    def other(self) -> str:
        return "en" if self.lang == "de" else "de"

    def t(self, key: str, /, **values: object) -> str:
        text = MESSAGES[self.lang].get(key) or MESSAGES[DEFAULT].get(key) or key
        return text.format(**values) if values else text

    def t_or(self, key: str, fallback: str) -> str:
        """The translation of ``key`` if the catalogue has one, else ``fallback`` as it is."""
        return MESSAGES[self.lang].get(key) or fallback

    def date(self, value: dt.date | str | None) -> str:
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            try:
                value = dt.date.fromisoformat(value)
            except ValueError:
                return value
        if isinstance(value, dt.datetime):
            value = self._local(value).date()
        return value.strftime("%d.%m.%Y") if self.lang == "de" else value.isoformat()

    def datetime(self, value: dt.datetime | str | None) -> str:
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value)
            except ValueError:
                return value
        pattern = "%d.%m.%Y %H:%M" if self.lang == "de" else "%Y-%m-%d %H:%M"
        return self._local(value).strftime(pattern)

    @staticmethod
    def _local(value: dt.datetime) -> dt.datetime:
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return aware.astimezone(DISPLAY_TZ)

    def number(self, value: Decimal | int | float | None, places: int | None = None) -> str:
        if value is None:
            return ""
        number = Decimal(str(value))
        if places is None:
            # Quantities: no trailing zeros, never scientific notation.
            text = format(number.normalize(), "f")
        else:
            text = format(number.quantize(Decimal(1).scaleb(-places)), "f")
        sign = "-" if text.startswith("-") else ""
        whole, _, fraction = text.lstrip("-").partition(".")
        thousands, decimal_point = (".", ",") if self.lang == "de" else (",", ".")
        result = sign + _group(whole, thousands)
        return f"{result}{decimal_point}{fraction}" if fraction else result

    def money(self, amount: Decimal | int | float | None, currency: str | None) -> str:
        if amount is None:
            return ""
        text = self.number(amount, 2)
        if not currency:
            return text
        sign = _CURRENCY_SIGNS.get(currency, currency)
        if self.lang == "de":
            return f"{text}\u00a0{sign}"
        if sign == currency:
            return f"{currency}\u00a0{text}"
        return f"-{sign}{text[1:]}" if text.startswith("-") else f"{sign}{text}"
