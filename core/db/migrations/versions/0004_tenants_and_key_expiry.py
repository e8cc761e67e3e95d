"""core: tenants; every API key belongs to one and may expire

Revision ID: core_0004
Revises: core_0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "core_0004"
down_revision = "core_0003"
branch_labels = None
depends_on = None

DEFAULT_TENANT = "default"  # verticals.core.auth.DEFAULT_TENANT, frozen as of this revision


def upgrade() -> None:
    tenants = op.create_table(
        "tenants",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
        sa.UniqueConstraint("name", name="uq_tenants_name"),
    )
    op.execute(tenants.insert().values(name=DEFAULT_TENANT, created_at=sa.func.now()))
    with op.batch_alter_table("api_keys") as batch:
        # existing keys go to the default tenant
        batch.add_column(
            sa.Column("tenant", sa.String(64), nullable=False, server_default=DEFAULT_TENANT)
        )
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("api_keys") as batch:
        batch.alter_column("tenant", existing_type=sa.String(64), server_default=None)
        batch.create_foreign_key("fk_api_keys_tenant_tenants", "tenants", ["tenant"], ["name"])


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_constraint("fk_api_keys_tenant_tenants", type_="foreignkey")
        batch.drop_column("expires_at")
        batch.drop_column("tenant")
    op.drop_table("tenants")
