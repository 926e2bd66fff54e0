"""The FastAPI application: every domain's router, the web UI, and the error handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from relata import __version__, checkpoints
from relata.api import errors
from relata.auth import gate
from relata.config import Settings, get_settings
from relata.db import Database


def create_app(
    settings: Settings | None = None, db: Database | None = None, server: bool = False
) -> FastAPI:
    """``server``: a long-running server process (uvicorn's), which settles its heap once
    started and after each reload of the decision snapshot (heap.py); tests and embedded
    uses leave the garbage collector alone."""
    settings = settings or get_settings()
    database = db or Database(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database.migrate()
        checkpointer = checkpoints.start(database) if server else None
        yield
        if checkpointer is not None:
            checkpointer.stop()
        app.state.audit_writer.stop()
        if db is None:
            database.dispose()

    app = FastAPI(
        title="relata",
        version=__version__,
        description="One point of truth about every customer.",
        lifespan=lifespan,
        # Every route passes the gate: who is calling, may they (auth/permissions.ROUTES),
        # CSRF for cookie sessions, the audit log. A route nobody mapped is admin-only.
        dependencies=[Depends(gate.gate)],
    )
    app.state.settings = settings
    app.state.db = database
    app.state.server = server
    errors.install(app)

    from relata.consent.api import router as consent_router
    from relata.decisions.api import router as decisions_router
    from relata.events.api import router as events_router
    from relata.identity.api import router as identity_router
    from relata.identity.review_api import router as review_router
    from relata.ingest.api import router as ingest_router
    from relata.profiles.api import router as profiles_router
    from relata.segments.api import router as segments_router
    from relata.web.views import mount as mount_web

    # Routes are matched in order: the hot ones first (a decision at the moment of contact,
    # tracked events), the rest after.
    for router in (
        decisions_router,
        events_router,
        profiles_router,
        identity_router,
        ingest_router,
        consent_router,
        review_router,
        segments_router,
    ):
        app.include_router(router)

    from relata.auth.api import router as auth_router
    from relata.web.auth_views import forbidden_page
    from relata.web.auth_views import router as auth_pages

    gate.install(app, forbidden_page)
    app.include_router(auth_router)
    app.include_router(auth_pages)

    @app.get("/health", tags=["meta"])
    async def health() -> dict[str, str]:  # on the loop: a pool thread's hop cost ~0.3 ms
        return {"status": "ok", "version": __version__}

    mount_web(app)
    return app
