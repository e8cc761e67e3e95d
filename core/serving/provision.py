"""A scratch home and database ready to serve one domain: what a benchmark's server starts on."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = ("VERTICALS_HOME", "VERTICALS_DATABASE_URL")


def provision_scratch(home: Path, database_url: str, domain: str, scopes: list[str]) -> str:
    """Migrate ``database_url``, register ``domain``'s production model under ``home`` and create
    an API key with ``scopes``; returns the key. This process's settings and engines point at the
    scratch home only while it runs (the caller's environment is restored before returning), so a
    server started afterwards with ``VERTICALS_HOME``/``VERTICALS_DATABASE_URL`` set finds it
    ready."""
    from verticals.core.auth import create_key
    from verticals.core.bootstrap import prepare_database
    from verticals.core.config import reset_settings
    from verticals.core.db import reset_engines, session_scope
    from verticals.core.plugins import discover

    saved = {k: os.environ.get(k) for k in HOME_ENV}
    os.environ.update({"VERTICALS_HOME": str(home), "VERTICALS_DATABASE_URL": database_url})
    reset_settings()
    reset_engines()
    try:
        plugins = discover()
        prepare_database(plugins)
        plugins.domains[domain].ensure_production_model()
        with session_scope() as session:
            return create_key(session, "bench", scopes).key
    finally:
        reset_engines()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reset_settings()
