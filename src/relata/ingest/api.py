"""Sources and the quarantine over HTTP."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from relata.api.deps import ReadSession, WriteSession
from relata.ingest import service, sources
from relata.ingest.models import CHANNELS

router = APIRouter(prefix="/v1", tags=["ingest"])


class SourceCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    channel: str = Field(description=f"one of {', '.join(CHANNELS)}")
    trust: int = Field(50, ge=0, le=100)


class SourceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    channel: str
    trust: int
    created_at: datetime


class QuarantineRead(BaseModel):
    id: int
    source: str
    origin: str
    line_no: int | None
    raw: str
    reason: str
    status: str
    created_at: datetime


@router.get("/sources", response_model=list[SourceRead])
def list_sources(session: ReadSession) -> list[sources.Source]:
    return sources.list_sources(session)


@router.post("/sources", status_code=201, response_model=SourceRead)
def add_source(session: WriteSession, body: SourceCreate) -> sources.Source:
    return sources.add_source(session, body.name, body.channel, body.trust)


@router.get("/quarantine", response_model=list[QuarantineRead])
def list_quarantine(
    session: ReadSession,
    source: str | None = None,
    status: str = Query("open", pattern="^(open|resolved|all)$"),
    limit: int = Query(100, ge=1, le=1000),
) -> list[QuarantineRead]:
    return [
        QuarantineRead(
            id=e.id,
            source=name,
            origin=e.origin,
            line_no=e.line_no,
            raw=e.raw,
            reason=e.reason,
            status=e.status,
            created_at=e.created_at,
        )
        for e, name in service.list_quarantine(session, source, status, limit)
    ]
