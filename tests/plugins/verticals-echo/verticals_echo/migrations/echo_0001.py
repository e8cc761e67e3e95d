"""echo tables: notes

Revision ID: echo_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "echo_0001"
down_revision = None
branch_labels = ("echo",)
depends_on = "core_0001"


def upgrade() -> None:
    op.create_table(
        "echo_notes",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("text", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_echo_notes"),
    )
    op.create_index("ix_echo_notes_tenant", "echo_notes", ["tenant"])


def downgrade() -> None:
    op.drop_index("ix_echo_notes_tenant", table_name="echo_notes")
    op.drop_table("echo_notes")
