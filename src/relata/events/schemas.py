"""The event API's messages, in the spirit of Segment's spec.

Validation happens here, at the door: a malformed message is refused with the
path of the wrong field before anything is stored.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from relata.consent.cookies import problem as cookie_consent_problem
from relata.events.purchases import HOLDING_EVENTS, InvalidProperty, holdings_from

Id = Annotated[str, Field(min_length=1, max_length=255)]
# Track events that change the consent ledger (consent/events.py), and what they do.
CONSENT_EVENTS = {"Consent Granted": "grant", "Consent Revoked": "revoke"}
_CHANNELS = ("email", "sms", "phone", "post", "web", "push")  # consent.ledger.CHANNELS
_PURPOSE = re.compile(r"[a-z][a-z0-9_]{0,63}")


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    messageId: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    userId: Id | None = None
    anonymousId: Id | None = None
    timestamp: datetime | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    # Which registered source sent the message; the batch's or the default otherwise.
    source: Annotated[str, Field(min_length=1, max_length=64)] | None = None

    @field_validator("userId", "anonymousId", mode="before")
    @classmethod
    def _ids_as_text(cls, value: Any) -> Any:
        # Many trackers send numeric user ids.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @field_validator("context")
    @classmethod
    def _cookie_consent(cls, value: dict[str, Any]) -> dict[str, Any]:
        # The visitor's cookie-banner choice decides whether the event may profile them.
        if problem := cookie_consent_problem(value):
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _someone(self) -> _Message:
        if not self.userId and not self.anonymousId:
            raise ValueError("userId or anonymousId is required")
        return self


class Identify(_Message):
    type: Literal["identify"]
    traits: dict[str, Any] = Field(default_factory=dict)


class Track(_Message):
    type: Literal["track"]
    event: Annotated[str, Field(min_length=1, max_length=200)]
    properties: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consent(self) -> Track:
        if self.event in CONSENT_EVENTS:
            purpose, channel = self.properties.get("purpose"), self.properties.get("channel")
            if not isinstance(purpose, str) or not _PURPOSE.fullmatch(purpose):
                raise ValueError("properties.purpose: a purpose name, e.g. marketing")
            if channel not in _CHANNELS:
                raise ValueError(f"properties.channel: one of {', '.join(_CHANNELS)}")
            version = self.properties.get("text_version")
            if version is not None and (not isinstance(version, str) or len(version) > 200):
                raise ValueError("properties.text_version: text of at most 200 characters")
        return self

    @model_validator(mode="after")
    def _holdings(self) -> Track:
        if self.event in HOLDING_EVENTS:
            try:
                holdings_from(self.event, self.properties)
            except InvalidProperty as exc:
                raise ValueError(f"properties.{exc}") from None
        return self


class Page(_Message):
    type: Literal["page"]
    name: Annotated[str, Field(max_length=200)] | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class Alias(_Message):
    type: Literal["alias"]
    previousId: Id
    userId: Id

    @field_validator("previousId", mode="before")
    @classmethod
    def _previous_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Message = Annotated[Identify | Track | Page | Alias, Field(discriminator="type")]


class Batch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    batch: Annotated[list[Message], Field(min_length=1, max_length=5000)]
    source: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class EventsAccepted(BaseModel):
    accepted: int
    duplicates: int
    customers: list[int]
    # Stored in the quarantine instead: an erased person's, or consent for an unknown purpose.
    quarantined: int = 0
