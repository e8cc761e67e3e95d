"""medical studies: the decision (finding), input scope and warnings

Revision ID: medical_0002
Revises: medical_0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "medical_0002"
down_revision = "medical_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("medical_studies") as batch:
        batch.add_column(sa.Column("finding", sa.String(120), nullable=True))
        batch.add_column(sa.Column("in_scope", sa.Boolean, nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("ood_score", sa.Float, nullable=True))
        batch.add_column(sa.Column("warnings", sa.JSON, nullable=True))
    # studies stored before the scope check: the decision was the thresholded label
    op.execute("UPDATE medical_studies SET finding = predicted_label WHERE finding IS NULL")
    op.execute("UPDATE medical_studies SET warnings = '[]' WHERE warnings IS NULL")
    with op.batch_alter_table("medical_studies") as batch:
        batch.alter_column("finding", existing_type=sa.String(120), nullable=False)
        batch.alter_column("warnings", existing_type=sa.JSON, nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("medical_studies") as batch:
        batch.drop_column("warnings")
        batch.drop_column("ood_score")
        batch.drop_column("in_scope")
        batch.drop_column("finding")
