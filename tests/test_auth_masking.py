"""Masking contact data for principals without customers:read_contact. Pure."""

from __future__ import annotations

from datetime import UTC, datetime

from relata.profiles import masking
from relata.profiles.schemas import (
    CustomerRead,
    CustomerView,
    EventRead,
    Holdings,
    IdentifierRead,
    SourceRecordRead,
    Timeline,
)

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def test_values():
    assert masking.mask_email("anna.mueller@example.de") == "a***@example.de"
    assert masking.mask_email("no-at-sign") == "n***"
    assert masking.mask_phone("+4922112345") == "+49***45"
    assert masking.mask_phone("112") == "***"
    assert masking.mask_text("Hauptstraße") == "H***"
    assert masking.mask_text("X") == "***"


def test_nested_data_is_masked_by_key_and_by_shape():
    data = {
        "email": "anna@example.de",
        "Telefon": 4922112345,
        "Straße": "Hauptstraße",
        "Nr": "5a",
        "_invalid_email": "anna(at)example",
        "newsletter_mail_opt_in": True,
        "city": "Köln",
        "notes": ["ruft an von b@example.de", "c@example.de"],
        "traits": {"emailAddress": "d@example.de", "firstName": "Anna"},
    }
    assert masking.mask_data(data) == {
        "email": "a***@example.de",
        "Telefon": "492***45",
        "Straße": "H***",
        "Nr": "5***",
        "_invalid_email": "a***",
        "newsletter_mail_opt_in": True,
        "city": "Köln",
        "notes": ["ruft an von b@example.de", "c***@example.de"],
        "traits": {"emailAddress": "d***@example.de", "firstName": "Anna"},
    }


def test_the_whole_view():
    customer = CustomerRead(
        id=1,
        status="active",
        first_name="Anna",
        email="anna@example.de",
        phone="+4922112345",
        street="Hauptstraße",
        house_number="5a",
        postcode="50667",
        created_at=NOW,
        updated_at=NOW,
    )
    view = CustomerView(
        customer=customer,
        identifiers=[
            IdentifierRead(kind="email", value="anna@example.de", sources=["shop"]),
            IdentifierRead(kind="phone", value="+4922112345", sources=["shop"]),
            IdentifierRead(kind="customer_number", value="K1", sources=["shop"]),
        ],
        source_records=[
            SourceRecordRead(
                source="shop",
                channel="shop",
                source_key="K1",
                data={"email": "anna@example.de", "first_name": "Anna"},
                attributes={"Mobil": "0171 1234567"},
                created_at=NOW,
                updated_at=NOW,
            )
        ],
        holdings=Holdings(total=0, items=[]),
        timeline=Timeline(
            events=[
                EventRead(
                    id=1,
                    type="identify",
                    name=None,
                    source="web",
                    occurred_at=NOW,
                    properties={"email": "anna@example.de"},
                    context={"ip": "10.0.0.1"},
                )
            ],
            next_cursor=None,
        ),
    )
    masked = masking.mask_view(view)
    text = masked.model_dump_json()
    for secret in ("anna@example.de", "+4922112345", "Hauptstraße", "1234567"):
        assert secret not in text, secret
    assert masked.customer.first_name == "Anna" and masked.customer.postcode == "50667"
    assert [i.value for i in masked.identifiers] == ["a***@example.de", "+49***45", "K1"]
    assert masked.source_records[0].data["first_name"] == "Anna"
    assert view.customer.email == "anna@example.de"  # the original is untouched
