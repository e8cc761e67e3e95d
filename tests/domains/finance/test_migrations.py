"""Finance migrations on a database that already holds rows: finance_0002 moves them to the
default tenant; finance_0003 moves the review queue and labels onto core's labeling queue,
keeping every label, and a downgrade brings them back."""

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
            "label_items",
            "label_annotations",
            "finance_customer_state",
        ):
            tenants = conn.execute(text(f"SELECT DISTINCT tenant FROM {table}")).scalars().all()
            assert tenants == ["default"], table
    # the queued item had a label: it is labelled, no longer waiting
    assert service.get_transaction("old1", tenant="default").review_status == "resolved"
    assert service.review_queue(10, tenant="default") == []
    assert service.review_queue(10, tenant="bank-a") == []


def _insert_transaction(conn, transaction_id: str, now: str) -> None:  # noqa: ANN001
    conn.execute(
        text(
            "INSERT INTO finance_transactions (tenant, transaction_id, tx_datetime, ts,"
            " customer_id, terminal_id, amount, fraud_probability, decision, model_version,"
            " input_sha256, features, response, label, created_at) VALUES ('default', :id,"
            " '2018-08-01 02:00:00', 1533088800, 'c1', 'm1', 900.0, 0.7, 'review', 'v1', :sha,"
            " '[]', '{\"reasons\": []}', NULL, :now)"
        ),
        {"id": transaction_id, "sha": "0" * 64, "now": now},
    )


def test_review_queue_and_labels_move_onto_the_labeling_queue(db, plugins) -> None:
    from verticals.core.db.migrate import downgrade, upgrade
    from verticals.domains.finance import service

    downgrade(plugins.migration_dirs(), target="finance_0002")
    now = "2026-12-01 10:00:00"
    with db.begin() as conn:
        for tid in ("waiting", "reviewed", "chargeback"):
            _insert_transaction(conn, tid, now)
        for tid, status in (("waiting", "pending"), ("reviewed", "resolved")):
            conn.execute(
                text(
                    "INSERT INTO finance_review_queue (tenant, transaction_id, risk, status,"
                    " created_at) VALUES ('default', :id, 0.7, :status, :now)"
                ),
                {"id": tid, "status": status, "now": now},
            )
        for tid, analyst, is_fraud in (
            ("reviewed", "ana", True),
            ("reviewed", "bob", False),
            ("chargeback", None, True),
        ):
            conn.execute(
                text(
                    "INSERT INTO finance_labels (tenant, transaction_id, is_fraud, analyst,"
                    " created_at) VALUES ('default', :id, :fraud, :analyst, :now)"
                ),
                {"id": tid, "fraud": is_fraud, "analyst": analyst, "now": now},
            )
    upgrade(plugins.migration_dirs())
    with db.connect() as conn:
        items = {
            r.subject: r
            for r in conn.execute(
                text(
                    "SELECT subject, status, label, annotations, agreement, strategy"
                    " FROM label_items WHERE domain = 'finance'"
                )
            )
        }
        labellers = conn.execute(
            text("SELECT labeller FROM label_annotations ORDER BY id")
        ).scalars()
        assert list(labellers) == ["ana", "bob", None]
    assert items["waiting"].status == "pending" and items["waiting"].label is None
    # two analysts disagreed: the newest label is accepted, agreement 1/2
    assert (items["reviewed"].label, items["reviewed"].annotations) == ("genuine", 2)
    assert items["reviewed"].agreement == 0.5
    assert (items["chargeback"].label, items["chargeback"].strategy) == ("fraud", "feedback")
    assert [i.transaction_id for i in service.review_queue(10, tenant="default")] == ["waiting"]
    assert service.get_transaction("chargeback", tenant="default").review_status is None

    downgrade(plugins.migration_dirs(), target="finance_0002")
    with db.connect() as conn:
        queue = conn.execute(
            text("SELECT transaction_id, status FROM finance_review_queue ORDER BY 1")
        ).all()
        labels = conn.execute(text("SELECT COUNT(*) FROM finance_labels")).scalar_one()
        left = conn.execute(
            text("SELECT COUNT(*) FROM label_items WHERE domain = 'finance'")
        ).scalar_one()
    assert [tuple(r) for r in queue] == [("reviewed", "resolved"), ("waiting", "pending")]
    assert (labels, left) == (3, 0)
    upgrade(plugins.migration_dirs())
