"""finance tables: online state, transactions, labels, review queue

Revision ID: finance_0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "finance_0001"
down_revision = None
branch_labels = ("finance",)
depends_on = "core_0001"


def upgrade() -> None:
    for table, key in (
        ("finance_customer_state", "customer_id"),
        ("finance_terminal_state", "terminal_id"),
    ):
        op.create_table(
            table,
            sa.Column(key, sa.String(64), nullable=False),
            sa.Column("buckets", sa.JSON, nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint(key, name=f"pk_{table}"),
        )
    op.create_table(
        "finance_transactions",
        sa.Column("transaction_id", sa.String(64), nullable=False),
        sa.Column("tx_datetime", sa.DateTime(timezone=False), nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("terminal_id", sa.String(64), nullable=False),
        sa.Column("amount", sa.Float, nullable=False),
        sa.Column("fraud_probability", sa.Float, nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("model_version", sa.String(120), nullable=False),
        sa.Column("input_sha256", sa.String(64), nullable=False),
        sa.Column("features", sa.JSON, nullable=False),
        sa.Column("response", sa.JSON, nullable=False),
        sa.Column("label", sa.Boolean, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("transaction_id", name="pk_finance_transactions"),
    )
    op.create_index(
        "ix_finance_transactions_customer_ts", "finance_transactions", ["customer_id", "ts"]
    )
    op.create_index(
        "ix_finance_transactions_terminal_ts", "finance_transactions", ["terminal_id", "ts"]
    )
    op.create_table(
        "finance_labels",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("transaction_id", sa.String(64), nullable=False),
        sa.Column("is_fraud", sa.Boolean, nullable=False),
        sa.Column("analyst", sa.String(100), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("api_key_id", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_finance_labels"),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["finance_transactions.transaction_id"],
            name="fk_finance_labels_transaction_id_finance_transactions",
        ),
    )
    op.create_index("ix_finance_labels_transaction_id", "finance_labels", ["transaction_id"])
    op.create_table(
        "finance_review_queue",
        sa.Column("transaction_id", sa.String(64), nullable=False),
        sa.Column("risk", sa.Float, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("transaction_id", name="pk_finance_review_queue"),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["finance_transactions.transaction_id"],
            name="fk_finance_review_queue_transaction_id_finance_transactions",
        ),
    )
    op.create_index(
        "ix_finance_review_queue_status_risk", "finance_review_queue", ["status", "risk"]
    )


def downgrade() -> None:
    op.drop_index("ix_finance_review_queue_status_risk", table_name="finance_review_queue")
    op.drop_table("finance_review_queue")
    op.drop_index("ix_finance_labels_transaction_id", table_name="finance_labels")
    op.drop_table("finance_labels")
    op.drop_index("ix_finance_transactions_terminal_ts", table_name="finance_transactions")
    op.drop_index("ix_finance_transactions_customer_ts", table_name="finance_transactions")
    op.drop_table("finance_transactions")
    op.drop_table("finance_terminal_state")
    op.drop_table("finance_customer_state")
