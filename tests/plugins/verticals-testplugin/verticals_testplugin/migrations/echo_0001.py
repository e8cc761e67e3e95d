"""echo notes table

Revision ID: echo_0001
Revises:
Create Date: 2026-11-23
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
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("text", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_echo_notes"),
    )


def downgrade() -> None:
    op.drop_table("echo_notes")
