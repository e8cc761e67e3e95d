"""core: monitoring (evaluator lease, rule state, alerts, webhook deliveries, drift points)

Revision ID: core_0005
Revises: core_0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "core_0005"
down_revision = "core_0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "monitor_leases",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_monitor_leases"),
    )
    op.create_table(
        "monitor_rule_states",
        sa.Column("fingerprint", sa.String(300), nullable=False),
        sa.Column("breach_since", TZ, nullable=True),
        sa.Column("clear_since", TZ, nullable=True),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", name="pk_monitor_rule_states"),
    )
    op.create_table(
        "monitor_alerts",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("fingerprint", sa.String(300), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("domain", sa.String(64), nullable=False),
        sa.Column("model", sa.String(120), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("acknowledged_by", sa.String(200), nullable=True),
        sa.Column("acknowledged_at", TZ, nullable=True),
        sa.Column("resolved_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_alerts"),
    )
    op.create_index(
        "ix_monitor_alerts_fingerprint_state", "monitor_alerts", ["fingerprint", "state"]
    )
    op.create_table(
        "monitor_deliveries",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("alert_id", sa.Integer, nullable=False),
        sa.Column("sink", sa.String(32), nullable=False),
        sa.Column("transition", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("response_code", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_deliveries"),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["monitor_alerts.id"],
            name="fk_monitor_deliveries_alert_id_monitor_alerts",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "monitor_drift_points",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("domain", sa.String(64), nullable=False),
        sa.Column("model", sa.String(120), nullable=False),
        sa.Column("feature", sa.String(120), nullable=False),
        sa.Column("statistic", sa.String(32), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("window_count", sa.Integer, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_drift_points"),
    )
    op.create_index(
        "ix_monitor_drift_points_model",
        "monitor_drift_points",
        ["domain", "model", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_monitor_drift_points_model", table_name="monitor_drift_points")
    op.drop_table("monitor_drift_points")
    op.drop_table("monitor_deliveries")
    op.drop_index("ix_monitor_alerts_fingerprint_state", table_name="monitor_alerts")
    op.drop_table("monitor_alerts")
    op.drop_table("monitor_rule_states")
    op.drop_table("monitor_leases")
