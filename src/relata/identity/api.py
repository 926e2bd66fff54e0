"""The merge log, and undoing a merge."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict

from relata.api.deps import ReadSession, WriteSession, get_settings
from relata.config import Settings
from relata.identity import service

router = APIRouter(prefix="/v1/merges", tags=["identity"])


class MergeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    survivor_id: int
    merged_id: int
    reason: str
    before: dict[str, Any]
    created_at: datetime
    undone_at: datetime | None


class UnmergeRead(BaseModel):
    merge_id: int
    restored_id: int
    survivor_id: int


@router.get("", response_model=list[MergeRead])
def list_merges(
    session: ReadSession,
    customer_id: int | None = Query(None, ge=1, le=2**63 - 1),
    limit: int = Query(100, ge=1, le=1000),
) -> list[Any]:
    return service.list_merges(session, customer_id, limit)


@router.post("/{merge_id}/undo", response_model=UnmergeRead)
def undo_merge(
    session: WriteSession,
    merge_id: int = Path(ge=1, le=2**63 - 1),
    settings: Settings = Depends(get_settings),
) -> UnmergeRead:
    done = service.unmerge(session, merge_id, settings)
    return UnmergeRead(
        merge_id=done.merge_id, restored_id=done.restored_id, survivor_id=done.survivor_id
    )
