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
    # existing keys go to the default tenant. Plain ADD COLUMNs: on SQLite anything more
    # (a foreign key, dropping the server default) rebuilds api_keys, and dropping a table
    # that prediction records and actions refer to fails with foreign keys on. The tenant is
    # a name, checked against tenants by verticals.core.auth.create_key.
    op.add_column(
        "api_keys",
        sa.Column("tenant", sa.String(64), nullable=False, server_default=DEFAULT_TENANT),
    )
    op.add_column("api_keys", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("expires_at")
        batch.drop_column("tenant")
    op.drop_table("tenants")
