"""core: derived artifacts (ONNX exports, quantized variants, caches) with their sha256

Revision ID: core_0002
Revises: core_0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "core_0002"
down_revision = "core_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "derived_artifacts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_version_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(120), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_derived_artifacts"),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name="fk_derived_artifacts_model_version_id_model_versions",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("model_version_id", "kind", name="uq_derived_artifact_kind"),
    )


def downgrade() -> None:
    op.drop_table("derived_artifacts")
