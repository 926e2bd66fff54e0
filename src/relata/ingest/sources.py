"""Registered sources: each channel that delivers data, with a trust rank."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from relata.db import insert_ignoring_duplicates, utcnow
from relata.ingest.models import CHANNELS, Source

SYSTEM_SOURCE = "relata"


class SourceError(ValueError):
    """A source that cannot be registered or found, with the reason."""


class SourceExists(SourceError):
    pass


def add_source(session: Session, name: str, channel: str, trust: int) -> Source:
    name = name.strip()
    if not name or len(name) > 64 or not all(ch.isalnum() or ch in "-_." for ch in name):
        raise SourceError(f"invalid source name {name!r}: use letters, digits, '-', '_' or '.'")
    if name == SYSTEM_SOURCE:
        raise SourceError(f"the source name {SYSTEM_SOURCE!r} is reserved")
    if channel not in CHANNELS:
        raise SourceError(f"unknown channel {channel!r}; choose one of {', '.join(CHANNELS)}")
    if not 0 <= trust <= 100:
        raise SourceError(f"trust must be between 0 and 100, got {trust}")
    if get_source(session, name) is not None:
        raise SourceExists(f"source {name!r} exists already")
    source = Source(name=name, channel=channel, trust=trust)
    session.add(source)
    session.flush()
    return source


def get_source(session: Session, name: str) -> Source | None:
    return session.scalar(select(Source).where(Source.name == name))


def require_source(session: Session, name: str) -> Source:
    source = get_source(session, name)
    if source is None:
        raise SourceError(f"unknown source {name!r}; register it with `relata sources add`")
    return source


def list_sources(session: Session) -> list[Source]:
    return list(
        session.scalars(select(Source).where(Source.name != SYSTEM_SOURCE).order_by(Source.name))
    )


def ensure_source(session: Session, name: str, channel: str, trust: int) -> Source:
    """The source of that name, registered first if missing; safe when two ask at once."""
    source = get_source(session, name)
    if source is None:
        session.execute(
            insert_ignoring_duplicates(session, Source.__table__).values(
                name=name, channel=channel, trust=trust, created_at=utcnow()
            )
        )
        source = get_source(session, name)
        assert source is not None
    return source


def system_source(session: Session) -> Source:
    """relata's own source, for what relata itself records (merges, unmerges)."""
    return ensure_source(session, SYSTEM_SOURCE, "other", 0)
