"""core: labeling (one annotation queue for every domain, annotations, retraining jobs)

Revision ID: core_0006
Revises: core_0005b
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "core_0006"
down_revision = "core_0005b"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "label_items",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False, server_default="default"),
        sa.Column("domain", sa.String(64), nullable=False),
        sa.Column("model", sa.String(120), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("payload", sa.JSON, nullable=True),
        sa.Column("prediction_id", sa.Integer, nullable=True),
        sa.Column("model_version", sa.String(120), nullable=True),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("priority", sa.Float, nullable=False),
        sa.Column("strategy", sa.String(32), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("assigned_to", sa.String(100), nullable=True),
        sa.Column("assigned_at", TZ, nullable=True),
        sa.Column("label", sa.String(120), nullable=True),
        sa.Column("annotations", sa.Integer, nullable=False),
        sa.Column("agreement", sa.Float, nullable=True),
        sa.Column("issue_score", sa.Float, nullable=True),
        sa.Column("second_review", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("labelled_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_label_items"),
        sa.UniqueConstraint("tenant", "domain", "model", "subject", name="uq_label_items_subject"),
    )
    op.create_index(
        "ix_label_items_queue", "label_items", ["tenant", "domain", "status", "priority"]
    )
    op.create_table(
        "label_annotations",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("item_id", sa.Integer, nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False, server_default="default"),
        sa.Column("label", sa.String(120), nullable=False),
        sa.Column("labeller", sa.String(100), nullable=True),
        sa.Column("role", sa.String(40), nullable=True),
        sa.Column("api_key_id", sa.Integer, nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_label_annotations"),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["label_items.id"],
            name="fk_label_annotations_item_id_label_items",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_label_annotations_item", "label_annotations", ["item_id"])
    op.create_table(
        "retrain_jobs",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("domain", sa.String(64), nullable=False),
        sa.Column("model", sa.String(120), nullable=True),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("alert_id", sa.Integer, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("result", sa.JSON, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("started_at", TZ, nullable=True),
        sa.Column("finished_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_retrain_jobs"),
    )
    op.create_index("ix_retrain_jobs_status", "retrain_jobs", ["status", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_retrain_jobs_status", table_name="retrain_jobs")
    op.drop_table("retrain_jobs")
    op.drop_index("ix_label_annotations_item", table_name="label_annotations")
    op.drop_table("label_annotations")
    op.drop_index("ix_label_items_queue", table_name="label_items")
    op.drop_table("label_items")
