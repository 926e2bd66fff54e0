"""POST /v1/events: one message, a list of messages, or {"batch": [...]}."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import OperationalError

from relata.api.deps import WriteSession, get_settings
from relata.config import Settings
from relata.db import is_retryable
from relata.events import service
from relata.events.schemas import Batch, EventsAccepted, Message

router = APIRouter(prefix="/v1", tags=["events"])
RETRIES = 3
_message = TypeAdapter(Message)

EXAMPLE = {
    "batch": [
        {
            "type": "identify",
            "userId": "K100023",
            "anonymousId": "3f1c0d9e",
            "traits": {"email": "anna.mueller@example.de", "firstName": "Anna"},
            "messageId": "m-1",
        },
        {
            "type": "track",
            "userId": "K100023",
            "event": "Order Completed",
            "messageId": "m-2",
            "timestamp": "2026-11-20T10:15:00Z",
            "properties": {
                "order_id": "O-1001",
                "currency": "EUR",
                "products": [{"product_id": "SKU-1", "name": "Laufschuh", "price": 89.9}],
            },
        },
    ]
}


def _nul_at(value: Any, path: str) -> str | None:
    """Where a NUL character hides: PostgreSQL can store none, in text or JSON."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        if isinstance(key, str) and "\x00" in key:
            return f"{path}.{key!r}".lstrip(".")
        if found := _nul_at(item, f"{path}.{key}".lstrip(".")):
            return found
    return None


def parse(payload: Any) -> Batch:
    """Accept what trackers send; refuse with the path of the first wrong field."""
    if where := _nul_at(payload, ""):
        raise RequestValidationError(
            [{"loc": (where,), "msg": "must not contain NUL characters", "type": "value_error"}]
        )
    try:
        if isinstance(payload, list):
            return Batch.model_validate({"batch": payload})
        if isinstance(payload, dict) and "batch" in payload:
            return Batch.model_validate(payload)
        if isinstance(payload, dict):
            return Batch(batch=[_message.validate_python(payload)])
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    raise RequestValidationError(
        [{"loc": ("body",), "msg": "expected a JSON object or a list of messages", "type": "type"}]
    )


@router.post("/events", status_code=202, response_model=EventsAccepted)
def post_events(
    session: WriteSession,
    payload: Any = Body(..., examples=[EXAMPLE]),
    settings: Settings = Depends(get_settings),
) -> EventsAccepted:
    """Store identify, track, page and alias messages; a repeated messageId is stored once."""
    batch = parse(payload)
    for attempt in range(RETRIES):
        try:
            result = service.ingest(session, batch.batch, settings, batch.source)
            break
        except OperationalError as exc:
            # Two batches spanning several sources can deadlock on customer rows; the
            # database picks one to fail, and a batch is idempotent: run it again.
            if not is_retryable(exc) or attempt == RETRIES - 1:
                raise
            session.rollback()
    return EventsAccepted(
        accepted=result.accepted,
        duplicates=result.duplicates,
        customers=sorted(set(result.customers)),
        quarantined=result.quarantined,
    )
