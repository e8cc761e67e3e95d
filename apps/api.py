"""The API gateway: discovers domain plugins and builds the app. Serve with
``uvicorn --factory verticals.apps.api:create_app`` (``verticals serve`` does)."""

from __future__ import annotations

from fastapi import FastAPI
from verticals.core.config import get_settings
from verticals.core.plugins import discover
from verticals.core.serving.app import build_app


def create_app() -> FastAPI:
    settings = get_settings()
    return build_app(discover(), max_request_bytes=settings.max_request_bytes)
