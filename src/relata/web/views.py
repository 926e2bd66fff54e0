"""Server-rendered pages. (Placeholder until the UI lands.)"""

from fastapi import FastAPI


def mount(app: FastAPI) -> None:
    return None
