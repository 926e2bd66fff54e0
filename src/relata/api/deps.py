"""What every router needs: the settings and one session per request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy.orm import Session

from relata.auth.permissions import Principal
from relata.config import Settings
from relata.db import Database


def get_db(request: Request) -> Database:
    return request.app.state.db


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def write_session(request: Request) -> Iterator[Session]:
    """The request owns the transaction: committed when the handler returns normally."""
    with get_db(request).session(write=True) as session:
        yield session


def read_session(request: Request) -> Iterator[Session]:
    with get_db(request).session(write=False) as session:
        yield session


def principal_of(request: Request) -> Principal | None:
    """Who is calling, as the gate (auth/gate.py) found; None on public routes."""
    return request.scope.get("state", {}).get("principal")


# async: pure lookups, so FastAPI need not send them to its thread pool.
async def current_principal(request: Request) -> Principal:
    found = principal_of(request)
    if found is None:
        raise HTTPException(401, "authentication required")
    return found


async def contact_visible(request: Request) -> bool:
    """E-mail, phone and street are shown unmasked only with customers:read_contact."""
    found = principal_of(request)
    return found is not None and found.can("customers:read_contact")


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
ContactVisible = Annotated[bool, Depends(contact_visible)]

# scope="function": the transaction ends before the response is sent, so a client never
# hears "accepted" for data whose commit then failed.
WriteSession = Annotated[Session, Depends(write_session, scope="function")]
ReadSession = Annotated[Session, Depends(read_session, scope="function")]
