from __future__ import annotations

from verticals.core.db.migrate import downgrade, table_names, upgrade


def test_migrations_go_up_and_down_including_plugin_branches(db, plugins):
    tables = table_names()
    assert {
        "api_keys",
        "prediction_records",
        "model_versions",
        "derived_artifacts",
        "echo_notes",
    } <= tables
    downgrade(plugins.migration_dirs(), target="base")
    remaining = table_names() - {"alembic_version"}
    assert not remaining & {
        "api_keys",
        "prediction_records",
        "model_versions",
        "derived_artifacts",
        "echo_notes",
    }
    upgrade(plugins.migration_dirs())
    assert {"api_keys", "echo_notes"} <= table_names()


def test_upgrade_is_idempotent(db, plugins):
    before = table_names()
    upgrade(plugins.migration_dirs())
    assert table_names() == before
