"""Fixtures: a private verticals home and SQLite database, migrated for this domain alone, and
an API app that mounts only this domain (whatever else is installed)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture
def migrated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The verticals home folder, with core's tables and this domain's branch created."""
    from verticals.core.auth import clear_key_cache
    from verticals.core.config import reset_settings
    from verticals.core.db import reset_engines
    from verticals.core.db.migrate import upgrade

    from verticals_echo.plugin import EchoDomain
    from verticals_echo.settings import reset_settings as reset_domain_settings

    home = tmp_path / "home"
    monkeypatch.setenv("VERTICALS_HOME", str(home))
    monkeypatch.setenv("VERTICALS_DATABASE_URL", f"sqlite:///{tmp_path / 'test.db'}")
    for reset in (reset_settings, reset_domain_settings, reset_engines, clear_key_cache):
        reset()
    upgrade([EchoDomain().migrations_dir()])
    yield home
    for reset in (reset_settings, reset_domain_settings, reset_engines, clear_key_cache):
        reset()


@pytest.fixture
def domain(migrated: Path):
    """The domain as the API starts it: shipped model registered, then loaded."""
    from verticals_echo.plugin import EchoDomain

    started = EchoDomain()
    started.ensure_production_model()
    started.setup()
    return started


@pytest.fixture
def client(domain):
    from fastapi.testclient import TestClient
    from verticals.core.plugins import PluginRegistry
    from verticals.core.serving.app import build_app

    app = build_app(PluginRegistry(domains={domain.name: domain}), max_request_bytes=1 << 20)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def make_key(migrated: Path) -> Callable[[list[str]], str]:
    from verticals.core.auth import create_key
    from verticals.core.db import session_scope

    def factory(scopes: list[str]) -> str:
        with session_scope() as session:
            return create_key(session, "test", scopes).key

    return factory


@pytest.fixture
def viewer():
    """A signed-in dashboard user allowed everything in this domain."""
    from verticals.core.auth import Principal

    from verticals_echo import NAME

    return Principal(name="ann", scopes=[f"{NAME}:*"], role="analyst", tenant="t1")
