"""What the 360° view shows, as the API and the CLI serialise it."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict


class _Read(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)


class Provenance(_Read):
    source: str
    source_key: str
    at: datetime
    rule: str = "trust"


class CustomerRead(_Read):
    id: int
    status: str
    first_name: str | None = None
    last_name: str | None = None
    birth_date: date | None = None
    age: int | None = None
    gender: str | None = None
    company: str | None = None
    email: str | None = None
    phone: str | None = None
    street: str | None = None
    house_number: str | None = None
    postcode: str | None = None
    city: str | None = None
    country: str | None = None
    customer_number: str | None = None
    loyalty_card: str | None = None
    provenance: dict[str, Provenance] = {}
    created_at: datetime
    updated_at: datetime


class CustomerSummary(_Read):
    id: int
    first_name: str | None = None
    last_name: str | None = None
    birth_date: date | None = None
    email: str | None = None
    phone: str | None = None
    postcode: str | None = None
    city: str | None = None
    customer_number: str | None = None


class IdentifierRead(_Read):
    kind: str
    value: str
    sources: list[str]


class SourceRecordRead(_Read):
    source: str
    channel: str
    source_key: str
    data: dict[str, Any]
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class HoldingRead(_Read):
    kind: str
    reference: str
    product_id: str | None
    product_name: str | None
    category: str | None
    quantity: Decimal | None
    amount: Decimal | None
    currency: str | None
    status: str
    started_at: datetime
    ended_at: datetime | None
    source: str


class EventRead(_Read):
    id: int
    type: str
    name: str | None
    source: str
    occurred_at: datetime
    properties: dict[str, Any]
    context: dict[str, Any]


class Timeline(_Read):
    events: list[EventRead]
    next_cursor: str | None  # pass as ?before= for the next (older) page


class Holdings(_Read):
    total: int
    items: list[HoldingRead]


class DecisionOfferSummary(_Read):
    key: str
    rank: int
    reason: str
    responses: list[str]  # impression, click, accept, reject, convert


class DecisionSummary(_Read):
    """A next-best-offer decision made for the customer (decisions/), newest first."""

    decision_id: str
    created_at: datetime
    channel: str
    placement: str | None
    control: bool
    blocked: str | None
    offers: list[DecisionOfferSummary]


class CustomerView(_Read):
    customer: CustomerRead
    identifiers: list[IdentifierRead]
    source_records: list[SourceRecordRead]
    holdings: Holdings
    timeline: Timeline
    decisions: list[DecisionSummary] = []
