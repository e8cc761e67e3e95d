"""manufacturing tables: assets, readings, health, dead letters

Revision ID: manufacturing_0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "manufacturing_0001"
down_revision = None
branch_labels = ("manufacturing",)
depends_on = "core_0001"


def upgrade() -> None:
    op.create_table(
        "manufacturing_assets",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("asset_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("line", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_manufacturing_assets"),
        sa.UniqueConstraint("tenant", "asset_id", name="uq_manufacturing_assets_tenant"),
    )
    op.create_index("ix_manufacturing_assets_tenant", "manufacturing_assets", ["tenant"])
    op.create_table(
        "manufacturing_readings",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("asset_pk", sa.Integer, nullable=False),
        sa.Column("cycle", sa.Integer, nullable=False),
        sa.Column("values", sa.JSON, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_manufacturing_readings"),
        sa.ForeignKeyConstraint(
            ["asset_pk"],
            ["manufacturing_assets.id"],
            name="fk_manufacturing_readings_asset_pk_manufacturing_assets",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("asset_pk", "cycle", name="uq_manufacturing_readings_asset_pk"),
    )
    op.create_index("ix_manufacturing_readings_asset_pk", "manufacturing_readings", ["asset_pk"])
    op.create_table(
        "manufacturing_health",
        sa.Column("asset_pk", sa.Integer, nullable=False),
        sa.Column("last_cycle", sa.Integer, nullable=True),
        sa.Column("model_version", sa.String(120), nullable=False),
        sa.Column("estimate", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("asset_pk", name="pk_manufacturing_health"),
        sa.ForeignKeyConstraint(
            ["asset_pk"],
            ["manufacturing_assets.id"],
            name="fk_manufacturing_health_asset_pk_manufacturing_assets",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "manufacturing_dead_letters",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("topic", sa.String(300), nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("payload_excerpt", sa.Text, nullable=False),
        sa.Column("payload_bytes", sa.Integer, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_manufacturing_dead_letters"),
    )
    op.create_index(
        "ix_manufacturing_dead_letters_tenant", "manufacturing_dead_letters", ["tenant"]
    )


def downgrade() -> None:
    for table in (
        "manufacturing_dead_letters",
        "manufacturing_health",
        "manufacturing_readings",
        "manufacturing_assets",
    ):
        op.drop_table(table)
