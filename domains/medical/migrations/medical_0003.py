"""medical rows belong to a tenant: studies and reviews

Revision ID: medical_0003
Revises: medical_0002
Create Date: 2026-12-03

Existing rows go to the default tenant. Study ids are server-made uuid4s, so they stay the
primary key; reads filter by tenant. Plain ADD COLUMNs (SQLite rebuilds nothing, and the
server default stays: dropping it would rebuild medical_studies, which reviews refer to).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "medical_0003"
down_revision = "medical_0002"
branch_labels = None
depends_on = None

DEFAULT_TENANT = "default"


def upgrade() -> None:
    for table in ("medical_studies", "medical_reviews"):
        op.add_column(
            table,
            sa.Column("tenant", sa.String(64), nullable=False, server_default=DEFAULT_TENANT),
        )
    op.create_index(
        "ix_medical_studies_tenant_created", "medical_studies", ["tenant", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_medical_studies_tenant_created", table_name="medical_studies")
    for table in ("medical_reviews", "medical_studies"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("tenant")
