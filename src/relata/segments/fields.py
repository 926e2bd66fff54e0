"""relata's field registry: the golden record, derived values, traits, consents and the
collections of rows (events, purchases, contracts, holdings, identifiers).

Everything a marketer can pick in the segment builder comes from here. Another domain
adds its conditions by registering fields: ``REGISTRY.register(Field(...))`` for one
field, ``REGISTRY.register_prefix("x.", make)`` for a family. A field with
``source="custom"`` brings ``py(profile)`` for the Python compiler, ``sql(dialect,
customers_table)`` for the SQL compiler and ``loads=("name",)`` naming a loader
(``relata.segments.loader.register_loader``) that puts its data into ``profile.extra``;
``consent_fields`` is the example.
"""

from __future__ import annotations

from relata.segments.rules import ast
from relata.segments.rules.registry import Collection, Field, Registry

GENDERS = ("m", "f", "d")
EVENT_TYPES = ("identify", "track", "page", "alias", "system")


def _golden() -> list[Field]:
    text = "text"
    return [
        Field("first_name", text, column="first_name"),
        Field("last_name", text, column="last_name"),
        Field("gender", text, column="gender", choices=GENDERS),
        Field("birth_date", "date", column="birth_date"),
        Field("age", "number", source="age"),
        Field("birthday", "anniversary", source="birthday"),
        Field("company", text, column="company"),
        Field("email", text, column="email", group="contact"),
        Field("phone", text, column="phone", group="contact"),
        Field("customer_number", text, column="customer_number", group="contact"),
        Field("loyalty_card", text, column="loyalty_card", group="contact"),
        Field("street", text, column="street", group="address"),
        Field("house_number", text, column="house_number", group="address"),
        Field("postcode", text, column="postcode", group="address"),
        Field("city", text, column="city", group="address"),
        Field("country", text, column="country", group="address"),
        Field("created_at", "datetime", column="created_at", group="record"),
        Field("updated_at", "datetime", column="updated_at", group="record"),
    ]


def _traits() -> list[Field]:
    """Values computed from a customer's rows, named so marketers need not write aggregates."""
    active = ast.Cond("status", "=", "active")
    traits = [
        ("purchases_count", "number", ("count", "purchases", None, None)),
        ("purchases_total", "number", ("sum", "purchases", "amount", None)),
        ("first_purchase_at", "datetime", ("min", "purchases", "started_at", None)),
        ("last_purchase_at", "datetime", ("max", "purchases", "started_at", None)),
        ("active_contracts", "number", ("count", "contracts", None, active)),
    ]
    return [Field(n, t, "trait", group="traits", trait=spec) for n, t, spec in traits]


def _holding_fields() -> dict[str, Field]:
    fields = [
        Field("kind", "text", column="kind", choices=("purchase", "contract")),
        Field("product_id", "text", column="product_id"),
        Field("product_name", "text", column="product_name"),
        Field("category", "text", column="category"),
        Field("reference", "text", column="reference"),
        Field("quantity", "number", column="quantity"),
        Field("amount", "number", column="amount"),
        Field("currency", "text", column="currency"),
        Field("status", "text", column="status", choices=("completed", "active", "ended")),
        Field("started_at", "datetime", column="started_at"),
        Field("ended_at", "datetime", column="ended_at"),
    ]
    return {f.name: f for f in fields}


def _event_fields() -> dict[str, Field]:
    fields = [
        Field("name", "text", column="name"),
        Field("type", "text", column="type", choices=EVENT_TYPES),
        Field("source", "text", source="source"),
        Field("occurred_at", "datetime", column="occurred_at"),
    ]
    return {f.name: f for f in fields}


def _identifier_fields() -> dict[str, Field]:
    fields = [
        Field("kind", "text", column="kind"),
        Field("value", "text", column="value"),
        Field("created_at", "datetime", column="created_at"),
    ]
    return {f.name: f for f in fields}


def build_registry() -> Registry:
    from relata.segments import consent_fields

    registry = Registry()
    for f in (*_golden(), *_traits()):
        registry.register(f)
    holdings = _holding_fields()
    registry.collections = {
        "events": Collection("events", _event_fields(), "occurred_at", has_properties=True),
        "purchases": Collection("purchases", holdings, "started_at"),
        "contracts": Collection("contracts", holdings, "started_at"),
        "holdings": Collection("holdings", holdings, "started_at"),
        "identifiers": Collection("identifiers", _identifier_fields(), "created_at"),
    }
    consent_fields.install(registry)
    return registry


REGISTRY = build_registry()
