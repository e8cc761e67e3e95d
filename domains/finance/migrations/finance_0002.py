"""finance rows belong to a tenant: (tenant, id) keys every table

Revision ID: finance_0002
Revises: finance_0001
Create Date: 2026-12-03

Existing rows go to the default tenant. The primary keys become (tenant, transaction_id),
(tenant, customer_id) and (tenant, terminal_id), so two tenants' ids never collide, and
the labels and review queue refer to a transaction by (tenant, transaction_id).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "finance_0002"
down_revision = "finance_0001"
branch_labels = None
depends_on = None

DEFAULT_TENANT = "default"
TRANSACTIONS = "finance_transactions"
KEYED = {  # table -> its own key column, in the primary key after the tenant
    "finance_customer_state": "customer_id",
    "finance_terminal_state": "terminal_id",
    TRANSACTIONS: "transaction_id",
    "finance_review_queue": "transaction_id",
}
REFERRING = ("finance_labels", "finance_review_queue")
INDEXES = {
    "ix_finance_transactions_customer_ts": (TRANSACTIONS, ["customer_id", "ts"]),
    "ix_finance_transactions_terminal_ts": (TRANSACTIONS, ["terminal_id", "ts"]),
    "ix_finance_review_queue_status_risk": ("finance_review_queue", ["status", "risk"]),
    "ix_finance_labels_transaction_id": ("finance_labels", ["transaction_id"]),
}


def _fk(table: str, first: str) -> str:
    return f"fk_{table}_{first}_{TRANSACTIONS}"


def _rebuild(tenanted: bool) -> None:
    def columns(cols: list[str]) -> list[str]:
        return ["tenant", *cols] if tenanted else cols

    for name, (table, _cols) in INDEXES.items():
        op.drop_index(name, table_name=table)
    for table in REFERRING:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(
                _fk(table, "tenant" if not tenanted else "transaction_id"), type_="foreignkey"
            )
    for table, key in KEYED.items():
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(f"pk_{table}", columns([key]))
    for table in REFERRING:
        with op.batch_alter_table(table) as batch:
            batch.create_foreign_key(
                _fk(table, "tenant" if tenanted else "transaction_id"),
                TRANSACTIONS,
                columns(["transaction_id"]),
                columns(["transaction_id"]),
            )
    for name, (table, cols) in INDEXES.items():
        op.create_index(name, table, columns(cols))


def upgrade() -> None:
    for table in (*KEYED, "finance_labels"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("tenant", sa.String(64), nullable=False, server_default=DEFAULT_TENANT)
            )
    # the server default stays: on SQLite dropping it would rebuild finance_transactions, which
    # the labels and the review queue refer to (a refused DROP TABLE with foreign keys on)
    _rebuild(tenanted=True)


def downgrade() -> None:
    # only meaningful while every row is still the default tenant's (ids must be unique)
    _rebuild(tenanted=False)
    for table in (*KEYED, "finance_labels"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("tenant")
