"""Who am I, the audit log, users and API keys over HTTP. Rules: auth/permissions.ROUTES."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Query, Request

from relata.api.deps import CurrentPrincipal, ReadSession, WriteSession
from relata.auth import audit, gate, service
from relata.auth.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    AuditRead,
    PrincipalRead,
    UserCreate,
    UserRead,
)
from relata.db import utcnow

router = APIRouter(prefix="/v1", tags=["access control"])
MAX_ID = 2**63 - 1


@router.get("/me", response_model=PrincipalRead)
def me(principal: CurrentPrincipal) -> PrincipalRead:
    return PrincipalRead(
        kind=principal.kind,
        name=principal.name,
        role=principal.role,
        permissions=sorted(principal.permissions),
    )


@router.get("/audit", response_model=list[AuditRead])
def audit_log(
    session: ReadSession,
    customer_id: int | None = Query(None, ge=1, le=MAX_ID),
    limit: int = Query(100, ge=1, le=audit.MAX_LIMIT),
    before_id: int | None = Query(None, ge=1, le=MAX_ID, description="page on: older entries"),
) -> list[AuditRead]:
    """Who read or changed whose data, newest first."""
    rows = audit.entries(session, customer_id, limit, before_id)
    return [AuditRead.model_validate(asdict(r)) for r in rows]


@router.get("/users", response_model=list[UserRead])
def list_users(session: ReadSession) -> list[service.UserInfo]:
    return service.list_users(session)


@router.post("/users", status_code=201, response_model=UserRead)
def add_user(session: WriteSession, body: UserCreate) -> service.UserInfo:
    return service.add_user(session, body.username, body.role, body.password)


@router.post("/users/{username}/disable", response_model=UserRead)
def disable_user(session: WriteSession, request: Request, username: str) -> service.UserInfo:
    user = service.disable_user(session, username)
    session.commit()  # before this process forgets whom it trusted
    gate.forget(request.app)
    return user


@router.get("/api-keys", response_model=list[ApiKeyRead])
def list_api_keys(session: ReadSession) -> list[service.ApiKeyInfo]:
    return service.list_api_keys(session)


@router.post("/api-keys", status_code=201, response_model=ApiKeyCreated)
def create_api_key(session: WriteSession, body: ApiKeyCreate) -> ApiKeyCreated:
    info, key = service.create_api_key(session, body.name, body.scopes, utcnow(), body.expires_days)
    return ApiKeyCreated(**asdict(info), key=key)


@router.delete("/api-keys/{name}", response_model=ApiKeyRead)
def revoke_api_key(session: WriteSession, request: Request, name: str) -> service.ApiKeyInfo:
    key = service.revoke_api_key(session, name, utcnow())
    session.commit()  # before this process forgets whom it trusted
    gate.forget(request.app)
    return key
