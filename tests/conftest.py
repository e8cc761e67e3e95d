"""Shared fixtures: an isolated home and database per test, the app, API keys, dashboard users.

The database is SQLite by default; with ``VERTICALS_TEST_DATABASE_URL`` set (CI does) the tests
run on PostgreSQL, in a private database created for this test session so parallel runs on the
same server do not collide.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from verticals.core.config import reset_settings
from verticals.core.db import reset_engines

TEST_DATABASE_ENV = "VERTICALS_TEST_DATABASE_URL"

# The echo test plugin (tests/plugins/verticals-echo) registers under the test entry-point
# group, which only this switch loads; subprocesses the tests start inherit it.
os.environ.setdefault("VERTICALS_LOAD_TEST_PLUGINS", "1")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    base = os.environ.get(TEST_DATABASE_ENV)
    if not base:
        yield None
        return
    url = make_url(base)
    name = f"verticals_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield url.set(database=name).render_as_string(hide_password=False)
    reset_engines()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _clear_postgres(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture
def verticals_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    monkeypatch.setenv("VERTICALS_HOME", str(home))
    monkeypatch.delenv("VERTICALS_DATABASE_URL", raising=False)
    # Tests of a domain's behaviour send bursts a per-key limit would cut short; the limits
    # themselves are tested with explicit settings (tests/core/serving/test_ratelimit.py).
    monkeypatch.setenv("VERTICALS_RATE_LIMIT", "off")
    monkeypatch.setenv("VERTICALS_TENANT_RATE_LIMIT", "off")
    reset_settings()
    reset_engines()
    yield home
    reset_engines()
    reset_settings()


@pytest.fixture
def database_url(verticals_home: Path, postgres_url: str | None, monkeypatch) -> str:
    if postgres_url is None:
        return f"sqlite:///{verticals_home / 'test.db'}"
    reset_engines()
    _clear_postgres(postgres_url)
    return postgres_url


@pytest.fixture
def plugins():
    from verticals.core.plugins import discover

    return discover()


@pytest.fixture
def db(database_url: str, monkeypatch: pytest.MonkeyPatch, plugins):
    """A migrated database (core and every discovered domain); yields its Engine."""
    from verticals.core.auth import clear_key_cache
    from verticals.core.db import get_engine
    from verticals.core.db.migrate import upgrade

    monkeypatch.setenv("VERTICALS_DATABASE_URL", database_url)
    reset_settings()
    reset_engines()
    clear_key_cache()
    upgrade(plugins.migration_dirs())
    yield get_engine()
    clear_key_cache()
    reset_engines()


@pytest.fixture
def make_key(db) -> Callable[[list[str]], str]:
    from verticals.core.auth import create_key
    from verticals.core.db import session_scope

    def factory(scopes: list[str], name: str = "test", tenant: str | None = None) -> str:
        """A key of ``scopes``; of ``tenant`` when given (created if missing), else the default."""
        from verticals.core.auth import DEFAULT_TENANT, create_tenant, list_tenants

        with session_scope() as session:
            if tenant is not None and tenant not in {t.name for t in list_tenants(session)}:
                create_tenant(session, tenant)
            return create_key(session, name, scopes, tenant=tenant or DEFAULT_TENANT).key

    return factory


@dataclass(frozen=True)
class TestUser:
    name: str
    password: str
    principal: Any  # verticals.core.auth.Principal


@pytest.fixture
def make_user(db) -> Callable[..., TestUser]:
    """A local dashboard user of ``role``: its name, generated password and principal."""
    from verticals.core.accounts.users import create_user, principal_of
    from verticals.core.db import session_scope
    from verticals.core.db.models import UserRow

    def factory(role: str, name: str | None = None, tenant: str = "default") -> TestUser:
        with session_scope() as session:
            created = create_user(session, name or f"{role}-user", role, tenant=tenant)
            row = session.get(UserRow, created.info.id)
            return TestUser(created.info.name, created.password, principal_of(row))

    return factory


@pytest.fixture
def signed_in(make_user) -> Callable[..., Any]:
    """Sign ``role`` in to an AppTest the way the sign-in form does (session token in state)."""
    from verticals.apps.dashboard.access import TOKEN
    from verticals.core.accounts.sessions import sign_in

    def sign(app: Any, role: str, name: str | None = None) -> TestUser:
        user = make_user(role, name)
        app.session_state[TOKEN] = sign_in(user.name, user.password).token
        return user

    return sign


@pytest.fixture
def client(db):
    from fastapi.testclient import TestClient
    from verticals.apps.api import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def swap_after_check(monkeypatch: pytest.MonkeyPatch):
    """``swap_after_check(digest, swap, restore=None)``: run ``swap`` once, right after the
    verifying code has computed ``digest`` (the moment between the check and any later reopen of
    the file by path); ``restore``, if given, right after the next digest computed (a transient
    swap, which a later re-check cannot see). Returns the list of what fired (1, then 2)."""
    import hashlib

    from verticals.core.registry import integrity

    def arm(digest: str, swap, restore=None) -> list[int]:  # noqa: ANN001 - callables
        fired: list[int] = []

        class _Hash:
            def __init__(self, *args) -> None:
                self._inner = hashlib.sha256(*args)

            def update(self, data) -> None:  # noqa: ANN001
                self._inner.update(data)

            def hexdigest(self) -> str:
                value = self._inner.hexdigest()
                if not fired:
                    if value == digest:
                        fired.append(1)
                        swap()
                elif len(fired) == 1:
                    fired.append(2)
                    if restore is not None:
                        restore()
                return value

        class _Hashlib:
            sha256 = _Hash

        monkeypatch.setattr(integrity, "hashlib", _Hashlib)
        return fired

    return arm
