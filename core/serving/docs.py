"""API docs that work offline: Swagger UI (``/docs``) and ReDoc (``/redoc``) load their scripts,
styles and icon from the API itself, never from a CDN, so they render on an air-gapped network.

FastAPI's own pages fetch Swagger UI and ReDoc from jsdelivr; the app factory turns those off
(``docs_url=None, redoc_url=None``) and calls :func:`install_docs`. The assets are the copies
packaged in ``fastapi-offline`` (a pinned dependency), served under :data:`ASSETS_URL`.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs/assets"
SWAGGER_JS = "swagger-ui-bundle.js"
SWAGGER_CSS = "swagger-ui.css"
REDOC_JS = "redoc.standalone.js"
FAVICON = "favicon.png"


def assets_dir() -> Path:
    """The folder holding the packaged Swagger UI and ReDoc files."""
    folder = Path(str(files("fastapi_offline") / "static"))
    missing = [
        n for n in (SWAGGER_JS, SWAGGER_CSS, REDOC_JS, FAVICON) if not (folder / n).is_file()
    ]
    if missing:
        raise RuntimeError(f"API docs assets missing from {folder}: {', '.join(missing)}")
    return folder


def install_docs(app: FastAPI, *, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Add ``docs_url`` (Swagger UI), its OAuth2 redirect page and ``redoc_url`` to ``app``,
    which must have been built with ``docs_url=None, redoc_url=None``."""
    if app.docs_url is not None or app.redoc_url is not None:
        raise ValueError("install_docs: build the app with docs_url=None and redoc_url=None")
    app.mount(ASSETS_URL, StaticFiles(directory=assets_dir()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url

    def url(request: Request, path: str) -> str:
        return f"{request.scope.get('root_path', '')}{path}"

    @app.get(docs_url, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=url(request, openapi_url),
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=url(request, oauth2_redirect_url) if oauth2_redirect_url else None,
            swagger_js_url=url(request, f"{ASSETS_URL}/{SWAGGER_JS}"),
            swagger_css_url=url(request, f"{ASSETS_URL}/{SWAGGER_CSS}"),
            swagger_favicon_url=url(request, f"{ASSETS_URL}/{FAVICON}"),
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    if oauth2_redirect_url:

        @app.get(oauth2_redirect_url, include_in_schema=False)
        def swagger_ui_redirect() -> HTMLResponse:
            return get_swagger_ui_oauth2_redirect_html()

    @app.get(redoc_url, include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=url(request, openapi_url),
            title=f"{app.title} - ReDoc",
            redoc_js_url=url(request, f"{ASSETS_URL}/{REDOC_JS}"),
            redoc_favicon_url=url(request, f"{ASSETS_URL}/{FAVICON}"),
            with_google_fonts=False,
        )
