"""finance_0002 on a database that already holds rows: all of them go to the default tenant."""

from __future__ import annotations

from sqlalchemy import text


def test_existing_rows_move_into_the_default_tenant(db, plugins) -> None:
    from verticals.core.db.migrate import downgrade, upgrade
    from verticals.domains.finance import service

    downgrade(plugins.migration_dirs(), target="finance_0001")
    now = "2026-12-01 10:00:00"
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO finance_transactions (transaction_id, tx_datetime, ts, customer_id,"
                " terminal_id, amount, fraud_probability, decision, model_version, input_sha256,"
                " features, response, label, created_at) VALUES ('old1', '2018-08-01 02:00:00',"
                " 1533088800, 'c1', 'm1', 900.0, 0.9, 'review', 'v1', :sha, '[]',"
                " '{\"reasons\": []}', NULL, :now)"
            ),
            {"sha": "0" * 64, "now": now},
        )
        conn.execute(
            text(
                "INSERT INTO finance_review_queue (transaction_id, risk, status, created_at)"
                " VALUES ('old1', 0.9, 'pending', :now)"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO finance_labels (transaction_id, is_fraud, created_at)"
                " VALUES ('old1', true, :now)"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO finance_customer_state (customer_id, buckets, updated_at)"
                " VALUES ('c1', '{}', :now)"
            ),
            {"now": now},
        )
    upgrade(plugins.migration_dirs())
    with db.connect() as conn:
        for table in (
            "finance_transactions",
            "finance_review_queue",
            "finance_labels",
            "finance_customer_state",
        ):
            tenants = conn.execute(text(f"SELECT DISTINCT tenant FROM {table}")).scalars().all()
            assert tenants == ["default"], table
    assert service.get_transaction("old1", tenant="default").review_status == "pending"
    assert [i.transaction_id for i in service.review_queue(10, tenant="default")] == ["old1"]
    assert service.review_queue(10, tenant="bank-a") == []
