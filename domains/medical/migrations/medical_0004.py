"""medical studies keep the summary monitoring reads

Revision ID: medical_0004
Revises: medical_0003
Create Date: 2026-12-03

``image_summary`` (JSON): the model input's intensity statistics and a projection of the
penultimate layer, written with each new study (domains/medical/monitoring.py). Nullable: studies
stored before it have none and are left out of drift windows. A plain ADD COLUMN.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "medical_0004"
down_revision = "medical_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("medical_studies", sa.Column("image_summary", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("medical_studies") as batch:
        batch.drop_column("image_summary")
