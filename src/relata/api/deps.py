"""What every router needs: the settings and one session per request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

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


# scope="function": the transaction ends before the response is sent, so a client never
# hears "accepted" for data whose commit then failed.
WriteSession = Annotated[Session, Depends(write_session, scope="function")]
ReadSession = Annotated[Session, Depends(read_session, scope="function")]
