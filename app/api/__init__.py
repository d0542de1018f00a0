"""The thin FastAPI layer: routes, codec negotiation, one error table."""

from app.api.application import create_app

__all__ = ["create_app"]
