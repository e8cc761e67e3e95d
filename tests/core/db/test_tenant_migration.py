"""core_0004 on a database with keys and predictions: the keys go to the default tenant."""

from __future__ import annotations

import hashlib

from sqlalchemy import inspect, text


def test_existing_keys_go_to_the_default_tenant_and_keep_working(db, plugins) -> None:
    from verticals.core.auth import authenticate, clear_key_cache, list_tenants
    from verticals.core.db import session_scope
    from verticals.core.db.migrate import downgrade, upgrade

    downgrade(plugins.migration_dirs(), target="core_0003")
    with db.begin() as conn:
        assert "tenant" not in {c["name"] for c in inspect(conn).get_columns("api_keys")}
        conn.execute(
            text(
                "INSERT INTO api_keys (id, name, prefix, key_hash, scopes, created_at)"
                " VALUES (1, 'old', 'abcd', :hash, '[\"*\"]', '2026-12-01 10:00:00')"
            ),
            {"hash": hashlib.sha256(b"vk_old").hexdigest()},
        )
        conn.execute(
            text(
                "INSERT INTO prediction_records (request_id, api_key_id, domain, route,"
                " input_sha256, output, status_code, latency_ms, created_at)"
                " VALUES ('r', 1, 'finance', 'x', :sha, '{}', 200, 1.0, '2026-12-01 10:00:00')"
            ),
            {"sha": "0" * 64},
        )
    upgrade(plugins.migration_dirs())
    clear_key_cache()
    with session_scope() as session:
        assert [t.name for t in list_tenants(session)] == ["default"]
        principal = authenticate(session, "vk_old")
    assert (principal.name, principal.tenant) == ("old", "default")
