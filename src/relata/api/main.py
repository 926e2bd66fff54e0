"""The ASGI app for uvicorn workers: ``uvicorn relata.api.main:app``."""

from relata.api.app import create_app

app = create_app(server=True)
