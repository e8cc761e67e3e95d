"""core: shadow predictions (a staged challenger's answers to live traffic, never returned)

Revision ID: core_0007
Revises: core_0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "core_0007"
down_revision = "core_0006"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "shadow_predictions",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False, server_default="default"),
        sa.Column("domain", sa.String(64), nullable=False),
        sa.Column("model", sa.String(120), nullable=False),
        sa.Column("version", sa.String(120), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("champion_version", sa.String(120), nullable=True),
        sa.Column("champion_score", sa.Float, nullable=True),
        sa.Column("served_at", TZ, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_shadow_predictions"),
        sa.UniqueConstraint(
            "domain", "model", "version", "tenant", "subject", name="uq_shadow_predictions_subject"
        ),
    )
    op.create_index(
        "ix_shadow_predictions_served",
        "shadow_predictions",
        ["domain", "model", "version", "served_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_shadow_predictions_served", table_name="shadow_predictions")
    op.drop_table("shadow_predictions")
