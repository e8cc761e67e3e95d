"""/docs and /redoc render offline: every asset they reference is served by the API itself."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from verticals.core.plugins import PluginRegistry
from verticals.core.serving.app import build_app

# src="...", href="...", ReDoc's spec-url="..." and the url: '...' given to SwaggerUIBundle.
_URL = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|\burl:\s*["']([^"']+)["']""")


@pytest.fixture(scope="module")
def docs_client():
    # No lifespan: the docs pages need neither a database nor a domain.
    return TestClient(build_app(PluginRegistry(), max_request_bytes=1 << 20))


def _referenced_urls(html: str) -> list[str]:
    return [a or b for a, b in _URL.findall(html)]


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        (
            "/docs",
            {
                "swagger-ui-bundle.js": "javascript",
                "swagger-ui.css": "text/css",
                "favicon.png": "image/png",
            },
        ),
        ("/redoc", {"redoc.standalone.js": "javascript", "favicon.png": "image/png"}),
    ],
)
def test_docs_pages_reference_only_assets_the_api_serves(docs_client, page, assets):
    response = docs_client.get(page)
    assert response.status_code == 200
    html = response.text
    assert not re.search(r"https?://", html), "the docs page names an external host"
    assert "//cdn" not in html and "fonts.googleapis" not in html

    urls = _referenced_urls(html)
    assert "/openapi.json" in urls
    for name in assets:
        assert f"/docs/assets/{name}" in urls, (name, urls)
    for url in urls:
        assert url.startswith("/"), url
        asset = docs_client.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url
        expected = assets.get(url.rsplit("/", 1)[-1])
        if expected:
            assert expected in asset.headers["content-type"], (url, asset.headers)


def test_swagger_bundle_is_swagger_ui_5_which_renders_openapi_3_1(docs_client):
    # FastAPI emits OpenAPI 3.1; Swagger UI 4 refuses it ("does not specify a valid version").
    assert docs_client.get("/openapi.json").json()["openapi"].startswith("3.1")
    bundle = docs_client.get("/docs/assets/swagger-ui-bundle.js").text
    assert "isOAS31" in bundle  # Swagger UI 5's OpenAPI 3.1 support


def test_the_oauth2_redirect_page_is_local_too(docs_client):
    response = docs_client.get("/docs/oauth2-redirect")
    assert response.status_code == 200
    assert not re.search(r"https?://", response.text)


def test_an_unknown_asset_is_404(docs_client):
    assert docs_client.get("/docs/assets/nope.js").status_code == 404
