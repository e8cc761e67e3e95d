"""Explicit start-up steps shared by the CLI, the API and the dashboard (never run at import)."""

from __future__ import annotations

import logging

from verticals.core.config import get_settings
from verticals.core.db.migrate import upgrade
from verticals.core.plugins import PluginRegistry

log = logging.getLogger(__name__)


def prepare_database(plugins: PluginRegistry) -> None:
    """Create the home folder and apply every migration (core and each domain's branch)."""
    get_settings().ensure_home()
    upgrade(plugins.migration_dirs())


def ensure_production_models(plugins: PluginRegistry) -> dict[str, str]:
    """Make sure every domain has a production model; maps domain → version or error text."""
    outcome: dict[str, str] = {}
    for name, domain in plugins.domains.items():
        try:
            outcome[name] = domain.ensure_production_model()
        except Exception as exc:
            log.exception("domain %r has no production model", name)
            outcome[name] = f"error: {type(exc).__name__}: {exc}"
    return outcome
