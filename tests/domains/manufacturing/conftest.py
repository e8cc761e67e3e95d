"""Fixtures: the manufacturing service on a migrated database with the shipped models, API keys
of each scope, and C-MAPSS rows to send."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

CMAPSS = Path(__file__).resolve().parents[4] / "shared" / "data" / "cmapss"
DEMO_ENGINES = (
    Path(__file__).resolve().parents[3] / "shared_models" / "manufacturing" / "demo_engines.txt"
)


@pytest.fixture
def domain(db):
    """The domain as the API starts it: shipped models registered, then loaded."""
    from verticals.domains.manufacturing.plugin import ManufacturingDomain

    started = ManufacturingDomain()
    started.ensure_production_model()
    started.setup()
    return started


@pytest.fixture
def service(domain):
    return domain.service


@pytest.fixture
def client(domain):
    """An app serving this domain alone (starting the others is not what these tests test)."""
    from fastapi.testclient import TestClient
    from verticals.core.plugins import PluginRegistry
    from verticals.core.serving.app import build_app

    app = build_app(PluginRegistry(domains={domain.name: domain}), max_request_bytes=64 << 20)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def principal():
    from verticals.core.auth import Principal

    return Principal(name="plant-a", scopes=["manufacturing:*"], key_id=None, tenant="plant-a")


@pytest.fixture
def auth(make_key) -> Callable[[str], dict[str, str]]:
    """Headers of a new key with ``scopes`` (comma-separated)."""
    return lambda scopes: {"Authorization": f"Bearer {make_key(scopes.split(','))}"}


def reading(cycle: int, base: float = 0.0) -> dict[str, float]:
    """A C-MAPSS-looking reading (FD001's typical values) at ``cycle``."""
    from verticals.domains.manufacturing.model.cmapss import READING_COLUMNS

    typical = DEMO_ROW
    return {"cycle": cycle, **{c: typical[i] + base for i, c in enumerate(READING_COLUMNS)}}


DEMO_ROW = [float(v) for v in DEMO_ENGINES.read_text().splitlines()[0].split()[2:]]
