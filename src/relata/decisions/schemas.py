"""What the decisions API accepts and answers. Validation happens here, at the door."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from relata.consent.cookies import problem as cookie_consent_problem
from relata.decisions.catalogue import RESPONSE_KINDS

MAX_ID = 2**63 - 1
MAX_CONTEXT_KEYS = 50
MAX_CONTEXT_TEXT = 500
Name = Annotated[str, Field(min_length=1, max_length=100)]
ResponseKind = Literal["impression", "click", "accept", "reject", "convert"]
assert set(RESPONSE_KINDS) == set(ResponseKind.__args__)  # type: ignore[attr-defined]


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def context_problem(context: dict[str, Any]) -> str | None:
    """Why a decision context is refused: flat values only, bounded in size."""
    if len(context) > MAX_CONTEXT_KEYS:
        return f"at most {MAX_CONTEXT_KEYS} keys"
    for key, value in context.items():
        if not key or len(key) > 64 or "\x00" in key:
            return f"{key[:64]!r}: keys are 1-64 characters"
        if key == "consent":
            if found := cookie_consent_problem(context):
                return found.removeprefix("context.")
            continue
        items = value if isinstance(value, list) else [value]
        if isinstance(value, list) and len(value) > 50:
            return f"{key}: at most 50 values in a list"
        for item in items:
            if item is None or isinstance(item, bool | int):
                continue
            if isinstance(item, float):
                if not math.isfinite(item):
                    return f"{key}: numbers must be finite"
            elif isinstance(item, str):
                if len(item) > MAX_CONTEXT_TEXT or "\x00" in item:
                    return f"{key}: text of at most {MAX_CONTEXT_TEXT} characters, no NUL"
            else:
                return f"{key}: values must be text, numbers, true/false or lists of them"
    return None


class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    customer_id: Annotated[int, Field(ge=1, le=MAX_ID)] | None = None
    anonymous_id: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    channel: Annotated[str, Field(min_length=1, max_length=16)]
    placement: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    limit: Annotated[int, Field(ge=1, le=20)] = 1
    max_per_category: Annotated[int, Field(ge=1, le=20)] | None = None
    explain: bool = False
    # Whether the offers returned count as shown (impressions) without a response saying
    # so; default RELATA_DECISION_AUTO_IMPRESSIONS.
    impressions: bool | None = None

    @field_validator("context")
    @classmethod
    def _flat(cls, value: dict[str, Any]) -> dict[str, Any]:
        if problem := context_problem(value):
            raise ValueError(problem)
        return value

    @field_validator("anonymous_id", "placement")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value

    @model_validator(mode="after")
    def _one_person(self) -> DecisionRequest:
        if (self.customer_id is None) == (self.anonymous_id is None):
            raise ValueError("give either customer_id or anonymous_id")
        return self


class OfferChoice(BaseModel):
    offer_id: int
    key: str
    name: str
    kind: str
    category: str | None
    template: str | None
    rank: int
    score: float  # priority: propensity × value × weight
    propensity: float
    reason: str
    parts: dict[str, float] | None = None  # with explain: log-odds contributions


class ConsideredOffer(BaseModel):
    offer_id: int
    key: str
    status: str  # chosen | excluded | not chosen
    code: str | None  # why excluded: consent, policy, not_live, channel, …, rule
    detail: str
    propensity: float | None
    score: float | None
    parts: dict[str, float] | None


class DecisionRead(BaseModel):
    decision_id: str
    customer_id: int
    channel: str
    placement: str | None
    control: bool
    offers: list[OfferChoice]
    blocked: str | None = None  # consent or a contact policy forbade any offer
    eligible: int
    excluded: dict[str, int]  # reason -> number of offers
    learning_cells: list[str] | None = None  # with explain
    considered: list[ConsideredOffer] | None = None  # with explain
    created_at: datetime


class ResponseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    offer: Annotated[str, Field(min_length=1, max_length=100)] | int
    type: ResponseKind
    value: float | None = Field(None, allow_inf_nan=False)
    occurred_at: datetime | None = None

    _utc = field_validator("occurred_at")(classmethod(lambda cls, v: _utc(v)))


class ResponseItem(ResponseIn):
    decision_id: Annotated[str, Field(min_length=1, max_length=64)]


class ResponsesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    responses: Annotated[list[ResponseItem], Field(min_length=1, max_length=5000)]


class ResponsesRead(BaseModel):
    recorded: int
    duplicates: int


class OfferWrite(BaseModel):
    """A new offer; defaults of the limits come from the settings."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    key: Annotated[str, Field(min_length=1, max_length=100)]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    kind: str = "product"
    status: str = "active"
    category: Annotated[str, Field(max_length=200)] | None = None
    product_id: Annotated[str, Field(max_length=128)] | None = None
    channels: Annotated[list[Name], Field(min_length=1, max_length=20)]
    placements: Annotated[list[Name], Field(max_length=50)] = Field(default_factory=list)
    value: float = Field(ge=0, allow_inf_nan=False)
    weight: float = Field(1.0, ge=0, allow_inf_nan=False)
    cost: float = Field(0.0, ge=0, allow_inf_nan=False)
    budget: float | None = Field(None, ge=0, allow_inf_nan=False)
    cap_total: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    cap_daily: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    rule: Annotated[str, Field(max_length=10_000)] | None = None
    max_impressions: Annotated[int, Field(ge=0, le=10_000)] | None = None
    impression_window_days: Annotated[int, Field(ge=1, le=3650)] | None = None
    reject_suppress_days: Annotated[int, Field(ge=0, le=3650)] | None = None
    suppress_held: Literal["product", "category", "none"] = "product"
    held_days: Annotated[int, Field(ge=0, le=3650)] | None = None
    template: Annotated[str, Field(max_length=500)] | None = None
    description: Annotated[str, Field(max_length=5000)] = ""

    _times = field_validator("starts_at", "ends_at")(classmethod(lambda cls, v: _utc(v)))


class OfferUpdate(BaseModel):
    """Only the fields given change; ``null`` clears an optional one."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    kind: str | None = None
    status: str | None = None
    category: Annotated[str, Field(max_length=200)] | None = None
    product_id: Annotated[str, Field(max_length=128)] | None = None
    channels: Annotated[list[Name], Field(min_length=1, max_length=20)] | None = None
    placements: Annotated[list[Name], Field(max_length=50)] | None = None
    value: float | None = Field(None, ge=0, allow_inf_nan=False)
    weight: float | None = Field(None, ge=0, allow_inf_nan=False)
    cost: float | None = Field(None, ge=0, allow_inf_nan=False)
    budget: float | None = Field(None, ge=0, allow_inf_nan=False)
    cap_total: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    cap_daily: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    rule: Annotated[str, Field(max_length=10_000)] | None = None
    max_impressions: Annotated[int, Field(ge=0, le=10_000)] | None = None
    impression_window_days: Annotated[int, Field(ge=1, le=3650)] | None = None
    reject_suppress_days: Annotated[int, Field(ge=0, le=3650)] | None = None
    suppress_held: Literal["product", "category", "none"] | None = None
    held_days: Annotated[int, Field(ge=0, le=3650)] | None = None
    template: Annotated[str, Field(max_length=500)] | None = None
    description: Annotated[str, Field(max_length=5000)] | None = None

    _times = field_validator("starts_at", "ends_at")(classmethod(lambda cls, v: _utc(v)))


class OfferRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    key: str
    name: str
    kind: str
    status: str
    category: str | None
    product_id: str | None
    channels: list[str]
    placements: list[str]
    value: float
    weight: float
    cost: float
    budget: float | None
    cap_total: int | None
    cap_daily: int | None
    starts_at: datetime | None
    ends_at: datetime | None
    rule: str | None
    max_impressions: int | None
    impression_window_days: int
    reject_suppress_days: int | None
    suppress_held: str
    held_days: int
    template: str | None
    description: str
    version: int
    created_at: datetime
    updated_at: datetime


class PolicyWrite(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Annotated[str, Field(min_length=1, max_length=100)]
    kind: Literal["frequency", "suppress", "volume"]
    channels: Annotated[list[Name], Field(max_length=20)] = Field(default_factory=list)
    max_count: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    window_days: Annotated[int, Field(ge=1, le=3650)] | None = None
    rule: Annotated[str, Field(max_length=10_000)] | None = None
    active: bool = True


class PolicyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    channels: Annotated[list[Name], Field(max_length=20)] | None = None
    max_count: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    window_days: Annotated[int, Field(ge=1, le=3650)] | None = None
    rule: Annotated[str, Field(max_length=10_000)] | None = None
    active: bool | None = None


class PolicyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: str
    channels: list[str]
    max_count: int | None
    window_days: int | None
    rule: str | None
    active: bool
    version: int
    updated_at: datetime


class VersionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    change: str
    changed_by: str | None
    changed_at: datetime
    data: dict[str, Any]


class Interval(BaseModel):
    estimate: float | None
    low: float | None
    high: float | None


class OfferPerformance(BaseModel):
    offer_id: int
    key: str
    name: str
    impressions: int
    accepts: int  # wins: clicks, accepts or conversions, once per impression
    accept_rate: Interval
    control_impressions: int
    control_accepts: int
    control_rate: Interval
    uplift: Interval  # accept rate minus control's, 95 % interval
