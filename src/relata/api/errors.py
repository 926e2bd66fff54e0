"""Bad input is answered with a 4xx and a message that says what is wrong; never a 500."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from relata.identity.service import MergeError, MergeNotFound
from relata.ingest.sources import SourceError, SourceExists
from relata.profiles.view import CursorError

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


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    # The database is down or overloaded: the client should try again, not give up.
    return JSONResponse(
        status_code=503,
        content={"detail": "the database is unavailable; try again shortly"},
        headers={"Retry-After": "5"},
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(OperationalError, _unavailable)
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    for error, status in (
        (SourceExists, 409),
        (SourceError, 422),
        (MergeNotFound, 404),
        (MergeError, 409),
        (CursorError, 422),
    ):
        app.add_exception_handler(error, _bad(status))
