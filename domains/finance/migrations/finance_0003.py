"""finance review queue and labels move onto core's labeling queue

Revision ID: finance_0003
Revises: finance_0002
Create Date: 2026-12-03

Every review item becomes a ``label_items`` row of the fraud model (subject: the transaction id;
priority: the risk it had), every label an annotation of its transaction's item ("fraud" or
"genuine"; the item's accepted label is the latest), and then the two finance tables go. A
downgrade rebuilds them from the core rows.
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "finance_0003"
down_revision = "finance_0002"
branch_labels = None
depends_on = "core_0006"

DOMAIN = "finance"
MODEL = "card-fraud-xgb"  # verticals.domains.finance.settings.MODEL_NAME, frozen here
TZ = sa.DateTime(timezone=True)
OPEN = {"pending": "pending", "resolved": "labelled"}

items = sa.table(
    "label_items",
    *(
        sa.column(name)
        for name in (
            "id tenant domain model subject model_version score priority strategy reason "
            "status label annotations agreement second_review created_at updated_at labelled_at"
        ).split()
    ),
)
annotations = sa.table(
    "label_annotations",
    *(
        sa.column(name)
        for name in "item_id tenant label labeller api_key_id note created_at".split()
    ),
    sa.column("detail", sa.JSON),
)


def _label(is_fraud: bool) -> str:
    return "fraud" if is_fraud else "genuine"


def upgrade() -> None:
    bind = op.get_bind()
    tx = sa.table(
        "finance_transactions",
        *(sa.column(c) for c in ("tenant", "transaction_id", "fraud_probability", "model_version")),
    )
    queue = list(
        bind.execute(
            sa.text(
                "SELECT q.tenant, q.transaction_id, q.risk, q.status, q.created_at, "
                "t.model_version FROM finance_review_queue q JOIN finance_transactions t "
                "ON t.tenant = q.tenant AND t.transaction_id = q.transaction_id"
            )
        )
    )
    labels = list(
        bind.execute(
            sa.text(
                "SELECT tenant, transaction_id, is_fraud, analyst, note, api_key_id, created_at "
                "FROM finance_labels ORDER BY id"
            )
        )
    )
    by_tx: dict[tuple[str, str], list] = defaultdict(list)
    for row in labels:
        by_tx[(row.tenant, row.transaction_id)].append(row)
    rows: dict[tuple[str, str], dict] = {}
    for q in queue:
        rows[(q.tenant, q.transaction_id)] = {
            "tenant": q.tenant,
            "subject": q.transaction_id,
            "model_version": q.model_version,
            "score": q.risk,
            "priority": q.risk,
            "strategy": "risk",
            "reason": "decision review (risk before the labeling queue)",
            "status": OPEN.get(q.status, "pending"),
            "created_at": q.created_at,
        }
    for key in by_tx.keys() - rows.keys():  # labelled without having been queued
        found = bind.execute(
            sa.select(tx.c.fraud_probability, tx.c.model_version).where(
                tx.c.tenant == key[0], tx.c.transaction_id == key[1]
            )
        ).first()
        rows[key] = {
            "tenant": key[0],
            "subject": key[1],
            "model_version": found.model_version if found else None,
            "score": found.fraud_probability if found else None,
            "priority": 0.0,
            "strategy": "feedback",
            "reason": "labelled without being queued",
            "status": "labelled",
            "created_at": by_tx[key][0].created_at,
        }
    for key, row in rows.items():
        given = by_tx.get(key, [])
        latest = given[-1] if given else None
        agree = (
            sum(_label(g.is_fraud) == _label(latest.is_fraud) for g in given) / len(given)
            if latest
            else None
        )
        if latest is not None:
            row["status"] = "labelled"
        item_id = bind.execute(
            items.insert()
            .values(
                domain=DOMAIN,
                model=MODEL,
                label=_label(latest.is_fraud) if latest else None,
                annotations=len(given),
                agreement=agree,
                second_review=False,
                updated_at=latest.created_at if latest else row["created_at"],
                labelled_at=latest.created_at if latest else None,
                **row,
            )
            .returning(items.c.id)
        ).scalar_one()
        for g in given:
            bind.execute(
                annotations.insert().values(
                    item_id=item_id,
                    tenant=g.tenant,
                    label=_label(g.is_fraud),
                    labeller=g.analyst,
                    api_key_id=g.api_key_id,
                    note=g.note,
                    detail={},
                    created_at=g.created_at,
                )
            )
    op.drop_index("ix_finance_review_queue_status_risk", table_name="finance_review_queue")
    op.drop_table("finance_review_queue")
    op.drop_index("ix_finance_labels_transaction_id", table_name="finance_labels")
    op.drop_table("finance_labels")


def downgrade() -> None:
    op.create_table(
        "finance_labels",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("transaction_id", sa.String(64), nullable=False),
        sa.Column("is_fraud", sa.Boolean, nullable=False),
        sa.Column("analyst", sa.String(100), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("api_key_id", sa.Integer, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False, server_default="default"),
        sa.PrimaryKeyConstraint("id", name="pk_finance_labels"),
        sa.ForeignKeyConstraint(
            ["tenant", "transaction_id"],
            ["finance_transactions.tenant", "finance_transactions.transaction_id"],
            name="fk_finance_labels_tenant_finance_transactions",
        ),
    )
    op.create_index(
        "ix_finance_labels_transaction_id", "finance_labels", ["tenant", "transaction_id"]
    )
    op.create_table(
        "finance_review_queue",
        sa.Column("transaction_id", sa.String(64), nullable=False),
        sa.Column("risk", sa.Float, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("resolved_at", TZ, nullable=True),
        sa.Column("tenant", sa.String(64), nullable=False, server_default="default"),
        sa.PrimaryKeyConstraint("tenant", "transaction_id", name="pk_finance_review_queue"),
        sa.ForeignKeyConstraint(
            ["tenant", "transaction_id"],
            ["finance_transactions.tenant", "finance_transactions.transaction_id"],
            name="fk_finance_review_queue_tenant_finance_transactions",
        ),
    )
    op.create_index(
        "ix_finance_review_queue_status_risk",
        "finance_review_queue",
        ["tenant", "status", "risk"],
    )
    bind = op.get_bind()
    queued = bind.execute(
        sa.text(
            "SELECT id, tenant, subject, priority, status, strategy, created_at, labelled_at "
            "FROM label_items WHERE domain = :d AND model = :m"
        ),
        {"d": DOMAIN, "m": MODEL},
    ).all()
    for item in queued:
        if item.strategy != "feedback":
            bind.execute(
                sa.text(
                    "INSERT INTO finance_review_queue (tenant, transaction_id, risk, status, "
                    "created_at, resolved_at) VALUES (:t, :s, :r, :st, :c, :l)"
                ),
                {
                    "t": item.tenant,
                    "s": item.subject,
                    "r": item.priority,
                    "st": "resolved" if item.status == "labelled" else "pending",
                    "c": item.created_at,
                    "l": item.labelled_at,
                },
            )
        for a in bind.execute(
            sa.text(
                "SELECT label, labeller, api_key_id, note, created_at FROM label_annotations "
                "WHERE item_id = :i ORDER BY id"
            ),
            {"i": item.id},
        ):
            bind.execute(
                sa.text(
                    "INSERT INTO finance_labels (tenant, transaction_id, is_fraud, analyst, note, "
                    "api_key_id, created_at) VALUES (:t, :s, :f, :a, :n, :k, :c)"
                ),
                {
                    "t": item.tenant,
                    "s": item.subject,
                    "f": a.label == "fraud",
                    "a": a.labeller,
                    "n": a.note,
                    "k": a.api_key_id,
                    "c": a.created_at,
                },
            )
    bind.execute(
        sa.text(
            "DELETE FROM label_annotations WHERE item_id IN "
            "(SELECT id FROM label_items WHERE domain = :d AND model = :m)"
        ),
        {"d": DOMAIN, "m": MODEL},
    )
    bind.execute(
        sa.text("DELETE FROM label_items WHERE domain = :d AND model = :m"),
        {"d": DOMAIN, "m": MODEL},
    )
