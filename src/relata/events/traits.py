"""Segment-style traits to relata's canonical fields. Pure."""

from __future__ import annotations

from typing import Any

TRAIT_FIELDS = {
    "firstname": "first_name",
    "first_name": "first_name",
    "lastname": "last_name",
    "last_name": "last_name",
    "email": "email",
    "phone": "phone",
    "birthday": "birth_date",
    "birthdate": "birth_date",
    "birth_date": "birth_date",
    "gender": "gender",
    "company": "company",
    "customernumber": "customer_number",
    "customer_number": "customer_number",
    "loyaltycard": "loyalty_card",
    "loyalty_card": "loyalty_card",
}
ADDRESS_FIELDS = {
    "street": "street",
    "housenumber": "house_number",
    "house_number": "house_number",
    "postalcode": "postcode",
    "postal_code": "postcode",
    "postcode": "postcode",
    "zip": "postcode",
    "city": "city",
    "country": "country",
}


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)


def split_traits(traits: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    """(canonical fields as raw text, every other trait as an attribute)."""
    fields: dict[str, str] = {}
    attributes: dict[str, Any] = {}
    for key, value in traits.items():
        name = TRAIT_FIELDS.get(key.lower())
        if key.lower() == "company" and isinstance(value, dict):
            value = value.get("name")
        if name and _text(value):
            fields[name] = _text(value) or ""
        elif key.lower() == "address" and isinstance(value, dict):
            for part, part_value in value.items():
                target = ADDRESS_FIELDS.get(part.lower())
                if target and _text(part_value):
                    fields[target] = _text(part_value) or ""
                else:
                    attributes[f"address.{part}"] = part_value
        elif key.lower() == "name" and isinstance(value, str):
            attributes[key] = value
        else:
            attributes[key] = value
    full = traits.get("name")
    if isinstance(full, str) and "first_name" not in fields and "last_name" not in fields:
        parts = full.split()
        if len(parts) >= 2:
            fields["first_name"], fields["last_name"] = " ".join(parts[:-1]), parts[-1]
        elif parts:
            fields["last_name"] = parts[0]
    return fields, attributes
