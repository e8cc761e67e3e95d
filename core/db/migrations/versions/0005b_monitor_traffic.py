"""core: monitoring traffic (requests, shed and failed ones, per replica, domain and interval)
and the alert outbox (transitions to send, written with the transition)

Written alongside labeling's core_0006, which follows it: one line of core revisions.

Revision ID: core_0005b
Revises: core_0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "core_0005b"
down_revision = "core_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitor_traffic",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("replica", sa.String(200), nullable=False),
        sa.Column("domain", sa.String(64), nullable=False),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("shed", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_traffic"),
    )
    op.create_index("ix_monitor_traffic_created", "monitor_traffic", ["created_at"])
    op.create_table(
        "monitor_outbox",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("alert_id", sa.Integer, nullable=False),
        sa.Column("change", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_outbox"),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["monitor_alerts.id"],
            name="fk_monitor_outbox_alert_id_monitor_alerts",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_monitor_outbox_unsent", "monitor_outbox", ["sent_at", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_monitor_outbox_unsent", table_name="monitor_outbox")
    op.drop_table("monitor_outbox")
    op.drop_index("ix_monitor_traffic_created", table_name="monitor_traffic")
    op.drop_table("monitor_traffic")
