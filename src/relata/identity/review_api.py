"""The review queue over HTTP, and the waterfall of a pair: `/v1/reviews`, `/v1/matching`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict

from relata.api.deps import ReadSession, WriteSession, get_db, get_settings
from relata.config import Settings
from relata.identity import review

router = APIRouter(tags=["matching"])
MAX_ID = 2**63 - 1
ReviewId = Path(ge=1, le=MAX_ID, description="review id")


class ReviewRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_a_id: int
    customer_b_id: int
    match_weight: float
    match_probability: float
    model_version: int
    status: str
    merge_id: int | None
    created_at: datetime
    decided_at: datetime | None


class ReviewDetail(ReviewRead):
    # The waterfall of the best-scoring pair of records: prior, then every comparison.
    explanation: dict[str, Any]


class Explanation(BaseModel):
    customers: tuple[int, int]
    match_weight: float
    match_probability: float
    steps: list[dict[str, Any]]


@router.get("/v1/reviews", response_model=list[ReviewRead])
def list_reviews(
    session: ReadSession,
    status: str = Query("open", pattern="^(open|accepted|rejected|stale)$"),
    limit: int = Query(50, ge=1, le=1000),
    after: int | None = Query(None, ge=0, le=MAX_ID, description="the last id of the page before"),
) -> list[Any]:
    return review.list_reviews(session, status, limit, after)


@router.get("/v1/reviews/{review_id}", response_model=ReviewDetail)
def get_review(session: ReadSession, review_id: int = ReviewId) -> Any:
    return review.get(session, review_id)


@router.post("/v1/reviews/{review_id}/accept", response_model=ReviewDetail)
def accept_review(
    session: WriteSession,
    review_id: int = ReviewId,
    settings: Settings = Depends(get_settings),
) -> Any:
    return review.accept(session, review_id, settings)


@router.post("/v1/reviews/{review_id}/reject", response_model=ReviewDetail)
def reject_review(session: WriteSession, review_id: int = ReviewId) -> Any:
    return review.reject(session, review_id)


@router.get("/v1/matching/explain", response_model=Explanation)
def explain_pair(
    request: Request,
    a: int = Query(ge=1, le=MAX_ID, description="customer id"),
    b: int = Query(ge=1, le=MAX_ID, description="customer id"),
) -> Explanation:
    from dataclasses import asdict

    from relata.identity.matching.batch import explain_pair as explain
    from relata.identity.matching.scoring import probability

    weight, steps = explain(get_db(request), a, b)
    return Explanation(
        customers=(a, b),
        match_weight=weight,
        match_probability=probability(weight),
        steps=[asdict(s) for s in steps],
    )
