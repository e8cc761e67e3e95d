"""Apply Alembic migrations: core's version folder plus one folder per domain plugin.

A domain ships its own migrations as a separate Alembic branch (``branch_labels=("<domain>",)``,
``depends_on="core_0001"``), so plugins add tables without editing core.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect
from verticals.core.db.session import get_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _config(engine: Engine, extra_locations: Iterable[Path]) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    locations = [str(MIGRATIONS_DIR / "versions"), *(str(p) for p in extra_locations)]
    # os.pathsep keeps Windows drive letters intact.
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", os.pathsep.join(locations))
    return config


def _run(engine: Engine, extra_locations: Iterable[Path], action: str, target: str) -> None:
    config = _config(engine, extra_locations)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, target)


def upgrade(extra_locations: Iterable[Path] = (), engine: Engine | None = None) -> None:
    _run(engine or get_engine(), list(extra_locations), "upgrade", "heads")


def downgrade(
    extra_locations: Iterable[Path] = (), engine: Engine | None = None, target: str = "base"
) -> None:
    _run(engine or get_engine(), list(extra_locations), "downgrade", target)


def table_names(engine: Engine | None = None) -> set[str]:
    return set(inspect(engine or get_engine()).get_table_names())
