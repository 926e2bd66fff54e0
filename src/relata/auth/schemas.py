"""What the access-control API reads and writes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class _Read(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)


class PrincipalRead(_Read):
    kind: str
    name: str
    role: str | None
    permissions: list[str]


class UserRead(_Read):
    username: str
    role: str
    active: bool
    created_at: datetime
    last_login_at: datetime | None


class UserCreate(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    role: str
    password: str = Field(min_length=1, max_length=1024, repr=False)


class ApiKeyRead(_Read):
    name: str
    prefix: str
    scopes: list[str]
    role: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    scopes: list[str] = Field(min_length=1, description="permission names or role names")
    expires_days: int | None = Field(None, ge=1, le=3650)


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="the key itself: shown this once, stored only as a hash")


class AuditRead(_Read):
    id: int
    at: datetime
    actor_kind: str
    actor_name: str
    action: str
    method: str
    route: str
    customer_id: int | None
    status: int
