"""The ASGI application: ``uvicorn app.main:app``."""

from app.api.factory import create_app

app = create_app()
