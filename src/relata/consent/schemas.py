"""What the consent and GDPR endpoints read and answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Purpose = Annotated[str, Field(min_length=1, max_length=64)]
Channel = Literal["email", "sms", "phone", "post", "web", "push"]
Text = Annotated[str, Field(min_length=1, max_length=200)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _no_nul(value: Any) -> Any:
    # PostgreSQL stores no NUL in text or JSON; nobody means one.
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if isinstance(value, dict):
        for k, v in value.items():
            _no_nul(k)
            _no_nul(v)
    return value


class Evidence(_In):
    """What proves the entry, besides the caller's IP and user agent (added by relata)."""

    form: Text | None = None  # the form or page where it was given
    user: Text | None = None  # who recorded it
    note: Annotated[str, Field(max_length=1000)] | None = None

    _nul = field_validator("form", "user", "note")(_no_nul)


class ConsentCreate(_In):
    purpose: Purpose
    channel: Channel
    action: Literal["grant", "revoke"]
    text_version: Text | None = None  # the wording or version agreed to
    occurred_at: datetime | None = None  # default: now; a future time counts as now
    source: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    evidence: Evidence = Field(default_factory=Evidence)

    _nul = field_validator("purpose", "text_version", "source")(_no_nul)


class OptInCreate(_In):
    purpose: Purpose = "marketing"
    channel: Channel = "email"
    text_version: Text | None = None
    source: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    evidence: Evidence = Field(default_factory=Evidence)

    _nul = field_validator("purpose", "text_version", "source")(_no_nul)


class UnsubscribeLinkCreate(_In):
    purpose: Purpose = "marketing"
    channel: Channel = "email"


class ConsentEntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    origin_customer_id: int
    purpose: str
    channel: str
    action: str
    occurred_at: datetime
    recorded_at: datetime
    via: str
    source: str | None
    source_key: str | None
    text_version: str | None
    evidence: dict[str, Any]


class PermissionRead(BaseModel):
    purpose: str
    channel: str
    allowed: bool
    status: str  # granted | pending | revoked | unknown
    since: datetime | None = None
    entry_id: int | None = None


class ConsentsRead(BaseModel):
    customer_id: int
    permissions: list[PermissionRead]
    ledger: list[ConsentEntryRead]


class OptInRead(BaseModel):
    entry: ConsentEntryRead
    token: str  # shown once; relata stores only its hash
    confirm_path: str
    expires_at: datetime


class UnsubscribeLinkRead(BaseModel):
    token: str
    unsubscribe_path: str


class CustomerUpdate(_In):
    """Corrections of golden fields (Art. 16): field -> the right value."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    reason: Annotated[str, Field(max_length=500)] | None = None

    def changes(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    _nul = field_validator("reason")(_no_nul)


class Rectification(BaseModel):
    customer_id: int
    changes: dict[str, dict[str, Any]]
