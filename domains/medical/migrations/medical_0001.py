"""medical tables: studies and reviews

Revision ID: medical_0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "medical_0001"
down_revision = None
branch_labels = ("medical",)
depends_on = "core_0001"


def upgrade() -> None:
    op.create_table(
        "medical_studies",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("api_key_id", sa.Integer, nullable=True),
        sa.Column("task", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("model_version", sa.String(120), nullable=False),
        sa.Column("positive_label", sa.String(120), nullable=False),
        sa.Column("probability", sa.Float, nullable=False),
        sa.Column("predicted_label", sa.String(120), nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("findings", sa.JSON, nullable=False),
        sa.Column("source_kind", sa.String(16), nullable=False),
        sa.Column("modality", sa.String(16), nullable=True),
        sa.Column("body_part", sa.String(64), nullable=True),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("columns", sa.Integer, nullable=False),
        sa.Column("window_center", sa.Float, nullable=False),
        sa.Column("window_width", sa.Float, nullable=False),
        sa.Column("study_uid", sa.String(64), nullable=False),
        sa.Column("series_uid", sa.String(64), nullable=False),
        sa.Column("sop_instance_uid", sa.String(64), nullable=False),
        sa.Column("sop_class_uid", sa.String(64), nullable=False),
        sa.Column("notes", sa.JSON, nullable=False),
        sa.Column("storage_dir", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_medical_studies"),
    )
    op.create_index("ix_medical_studies_created", "medical_studies", ["created_at"])
    op.create_table(
        "medical_reviews",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("study_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("api_key_id", sa.Integer, nullable=True),
        sa.Column("label", sa.String(120), nullable=False),
        sa.Column("agrees", sa.Boolean, nullable=False),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("model_version", sa.String(120), nullable=False),
        sa.Column("task", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_medical_reviews"),
        sa.ForeignKeyConstraint(
            ["study_id"], ["medical_studies.id"], name="fk_medical_reviews_study_id_medical_studies"
        ),
    )
    op.create_index("ix_medical_reviews_study", "medical_reviews", ["study_id"])


def downgrade() -> None:
    op.drop_index("ix_medical_reviews_study", table_name="medical_reviews")
    op.drop_table("medical_reviews")
    op.drop_index("ix_medical_studies_created", table_name="medical_studies")
    op.drop_table("medical_studies")
