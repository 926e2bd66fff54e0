"""Bad input is answered with a 4xx and a message that says what is wrong; never a 500."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from relata.auth.service import AlreadyExists, AuthError, NotFound
from relata.consent.errors import (
    ConsentError,
    CustomerErased,
    CustomerMerged,
    CustomerNotFound,
    EntryNotFound,
    SecretMismatch,
    TokenGone,
    TokenInvalid,
)
from relata.decisions import offers as decision_offers
from relata.decisions import service as decision_service
from relata.decisions.catalogue import CatalogueError
from relata.decisions.permission import ChannelError
from relata.identity.matching.engine import EngineError
from relata.identity.matching.scoring import ModelMismatch
from relata.identity.matching.store import NoModel, UnknownCustomer
from relata.identity.review import ReviewError, ReviewNotFound
from relata.identity.service import MergeError, MergeNotFound
from relata.ingest.sources import SourceError, SourceExists
from relata.profiles.view import CursorError
from relata.segments import service as segments
from relata.segments.rules import RuleError

# Pydantic names the member of a tagged union in the error location; users don't care.
_NOISE = {"body", "identify", "track", "page", "alias"}


def _where(loc: tuple[object, ...]) -> str:
    parts = [str(p) for p in loc if str(p) not in _NOISE and "[" not in str(p)]
    return ".".join(parts) or "body"


async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {"field": _where(tuple(e.get("loc", ()))), "message": str(e.get("msg", "invalid"))}
        for e in exc.errors()
    ]
    message = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return JSONResponse(status_code=422, content={"detail": message, "errors": errors})


def _bad(status: int):  # type: ignore[no-untyped-def]
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=status, content={"detail": str(exc)})

    return handler


async def _rule_error(request: Request, exc: Exception) -> JSONResponse:
    # Where the rule is wrong: position, line and column in the text, or its JSON path.
    assert isinstance(exc, RuleError)
    return JSONResponse(status_code=422, content=exc.as_dict())


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    # The database is down or overloaded: the client should try again, not give up.
    return JSONResponse(
        status_code=503,
        content={"detail": "the database is unavailable; try again shortly"},
        headers={"Retry-After": "5"},
    )


async def _misconfigured(request: Request, exc: Exception) -> JSONResponse:
    # A key changed under the database (consent/keys.py): an operator must act, not the client.
    return JSONResponse(status_code=503, content={"detail": f"misconfigured: {exc}"})


def install(app: FastAPI) -> None:
    app.add_exception_handler(OperationalError, _unavailable)
    app.add_exception_handler(SecretMismatch, _misconfigured)
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(RuleError, _rule_error)
    for error, status in (
        (SourceExists, 409),
        (SourceError, 422),
        (MergeNotFound, 404),
        (MergeError, 409),
        (CursorError, 422),
        (ReviewNotFound, 404),
        (ReviewError, 409),
        (UnknownCustomer, 404),
        (NoModel, 409),
        (ModelMismatch, 409),
        (EngineError, 409),
        (ConsentError, 422),
        (CustomerNotFound, 404),
        (EntryNotFound, 404),
        (TokenInvalid, 404),
        (CustomerMerged, 409),
        (CustomerErased, 410),
        (TokenGone, 410),
        (AuthError, 422),
        (AlreadyExists, 409),
        (NotFound, 404),
        (CatalogueError, 422),
        (ChannelError, 422),
        (decision_offers.OfferNotFound, 404),
        (decision_offers.PolicyNotFound, 404),
        (decision_offers.OfferExists, 409),
        (decision_service.CustomerNotFound, 404),
        (decision_service.DecisionNotFound, 404),
        (decision_service.ResponseError, 422),
        (segments.SegmentError, 422),
        (segments.SegmentNotFound, 404),
        (segments.SegmentExists, 409),
        (segments.SegmentInUse, 409),
    ):
        app.add_exception_handler(error, _bad(status))
