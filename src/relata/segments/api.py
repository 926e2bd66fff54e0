"""The segments API: define, version, count, list members and refresh. Thin."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from relata.api.deps import ReadSession, WriteSession
from relata.segments import catalogue, service
from relata.segments.rules import Node, to_json, to_text
from relata.segments.schemas import (
    CountRead,
    MembersRead,
    RefreshRead,
    RuleIn,
    RuleRead,
    SegmentCreate,
    SegmentRead,
    SegmentUpdate,
    VersionRead,
)

router = APIRouter(tags=["segments"])
Name = Annotated[str, Path(min_length=1, max_length=64, description="segment name")]


def _read(info: service.SegmentInfo) -> SegmentRead:
    return SegmentRead(
        name=info.name,
        description=info.description,
        version=info.version,
        rule=info.text,
        rule_json=info.rule,
        members=info.members,
        created_at=info.created_at,
        updated_at=info.updated_at,
        refreshed_at=info.refreshed_at,
    )


def _rule(session: Any, body: RuleIn | SegmentUpdate) -> Node | None:
    if body.rule is None and body.rule_json is None:
        return None
    return service.read_rule(session, body.rule, body.rule_json)


@router.get("/v1/segments", response_model=list[SegmentRead])
def list_segments(session: ReadSession) -> list[SegmentRead]:
    return [_read(i) for i in service.list_segments(session)]


@router.post("/v1/segments", response_model=SegmentRead, status_code=201)
def create_segment(session: WriteSession, body: SegmentCreate) -> SegmentRead:
    node = _rule(session, body)
    assert node is not None
    return _read(service.create(session, body.name, node, body.description))


@router.get("/v1/segments/{name}", response_model=SegmentRead)
def get_segment(session: ReadSession, name: Name) -> SegmentRead:
    return _read(service.get(session, name))


@router.put("/v1/segments/{name}", response_model=SegmentRead)
def update_segment(session: WriteSession, name: Name, body: SegmentUpdate) -> SegmentRead:
    return _read(service.update(session, name, _rule(session, body), body.description))


@router.delete("/v1/segments/{name}", status_code=204)
def delete_segment(session: WriteSession, name: Name) -> Response:
    service.delete_segment(session, name)
    return Response(status_code=204)


@router.get("/v1/segments/{name}/versions", response_model=list[VersionRead])
def segment_versions(session: ReadSession, name: Name) -> list[VersionRead]:
    return [
        VersionRead(
            version=v.version,
            rule=v.text,
            rule_json=v.rule,
            description=v.description,
            created_at=v.created_at,
        )
        for v in service.versions(session, name)
    ]


@router.get("/v1/segments/{name}/count", response_model=CountRead)
def segment_count(session: ReadSession, name: Name) -> CountRead:
    """Evaluated now over every customer (SQL), not the materialised membership."""
    return CountRead(count=service.count_segment(session, name))


@router.get("/v1/segments/{name}/members", response_model=MembersRead)
def segment_members(
    session: ReadSession,
    name: Name,
    after: int = Query(0, ge=0, le=2**63 - 1, description="the last id of the previous page"),
    limit: int = Query(1000, ge=1, le=10_000),
) -> MembersRead:
    """Customer ids of the members as evaluated now, ascending, a page at a time."""
    ids = service.member_ids(session, name, after, limit + 1)
    more = len(ids) > limit
    return MembersRead(members=ids[:limit], next_after=ids[limit - 1] if more else None)


@router.post("/v1/segments/{name}/refresh", response_model=RefreshRead)
def refresh_segment(session: WriteSession, name: Name) -> RefreshRead:
    """Materialise membership now: entries and exits become events on the timeline."""
    (done,) = service.refresh(session, [name])
    return RefreshRead(
        segment=done.segment, members=done.members, entered=done.entered, left=done.left
    )


@router.post("/v1/rules/check", response_model=RuleRead)
def check_rule(
    session: ReadSession,
    body: RuleIn,
    count: bool = Query(False, description="also count the customers it selects now"),
) -> RuleRead:
    """Check a rule without saving it: both forms, and (with ?count=true) the live count."""
    node = _rule(session, body)
    assert node is not None
    counted = service.count(session, node) if count else None
    return RuleRead(rule=to_text(node), rule_json=to_json(node), count=counted)


@router.get("/v1/rules/fields")
def rule_fields(request: Request) -> dict[str, Any]:
    """What a rule can speak of: fields, collections and the operators of each type."""
    purposes = tuple(request.app.state.settings.consent_purposes)
    return catalogue.describe(purposes=purposes)
