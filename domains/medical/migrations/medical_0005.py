"""medical reviews move onto core's labeling queue

Revision ID: medical_0005
Revises: medical_0004
Create Date: 2026-12-03

Every reviewed study gets a ``label_items`` row of its task's model (subject: the study id;
score: the model's probability), every review an annotation of it (the clinician's label, the
comment as its note, ``agrees`` and the model version in its detail); the accepted label is the
latest review's. Then ``medical_reviews`` goes. A downgrade rebuilds it from the core rows.
"""

from __future__ import annotations

import json
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "medical_0005"
down_revision = "medical_0004"
branch_labels = None
depends_on = "core_0006"

DOMAIN = "medical"
TZ = sa.DateTime(timezone=True)

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
    *(sa.column(name) for name in "item_id tenant label api_key_id note created_at".split()),
    sa.column("detail", sa.JSON),
)


def upgrade() -> None:
    bind = op.get_bind()
    reviews = bind.execute(
        sa.text(
            "SELECT r.tenant, r.study_id, r.created_at, r.api_key_id, r.label, r.agrees,"
            " r.comment, r.model_version, r.task, s.probability, s.created_at AS study_at"
            " FROM medical_reviews r JOIN medical_studies s ON s.id = r.study_id ORDER BY r.id"
        )
    ).all()
    by_study: dict[str, list] = defaultdict(list)
    for review in reviews:
        by_study[review.study_id].append(review)
    for study_id, given in by_study.items():
        latest, first = given[-1], given[0]
        item_id = bind.execute(
            items.insert()
            .values(
                tenant=first.tenant,
                domain=DOMAIN,
                model=first.task,
                subject=study_id,
                model_version=first.model_version,
                score=first.probability,
                priority=0.0,
                strategy="review",
                reason="reviewed before the labeling queue",
                status="labelled",
                label=latest.label,
                annotations=len(given),
                agreement=sum(g.label == latest.label for g in given) / len(given),
                second_review=False,
                created_at=first.study_at,
                updated_at=latest.created_at,
                labelled_at=latest.created_at,
            )
            .returning(items.c.id)
        ).scalar_one()
        for g in given:
            bind.execute(
                annotations.insert().values(
                    item_id=item_id,
                    tenant=g.tenant,
                    label=g.label,
                    api_key_id=g.api_key_id,
                    note=g.comment,
                    detail={"agrees": bool(g.agrees), "model_version": g.model_version},
                    created_at=g.created_at,
                )
            )
    op.drop_index("ix_medical_reviews_study", table_name="medical_reviews")
    op.drop_table("medical_reviews")


def downgrade() -> None:
    op.create_table(
        "medical_reviews",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("study_id", sa.String(32), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("api_key_id", sa.Integer, nullable=True),
        sa.Column("label", sa.String(120), nullable=False),
        sa.Column("agrees", sa.Boolean, nullable=False),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("model_version", sa.String(120), nullable=False),
        sa.Column("task", sa.String(64), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False, server_default="default"),
        sa.PrimaryKeyConstraint("id", name="pk_medical_reviews"),
        sa.ForeignKeyConstraint(
            ["study_id"], ["medical_studies.id"], name="fk_medical_reviews_study_id_medical_studies"
        ),
    )
    op.create_index("ix_medical_reviews_study", "medical_reviews", ["study_id"])
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT i.tenant, i.subject, i.model, i.model_version, a.label, a.api_key_id,"
            " a.note, a.detail, a.created_at FROM label_annotations a JOIN label_items i"
            " ON i.id = a.item_id WHERE i.domain = :d ORDER BY a.id"
        ),
        {"d": DOMAIN},
    ).all()
    for row in rows:  # detail: JSON text on SQLite, decoded already on PostgreSQL
        detail = (json.loads(row.detail) if isinstance(row.detail, str) else row.detail) or {}
        bind.execute(
            sa.text(
                "INSERT INTO medical_reviews (tenant, study_id, created_at, api_key_id, label,"
                " agrees, comment, model_version, task) VALUES (:t, :s, :c, :k, :l, :a, :n, :v,"
                " :task)"
            ),
            {
                "t": row.tenant,
                "s": row.subject,
                "c": row.created_at,
                "k": row.api_key_id,
                "l": row.label,
                "a": bool(detail.get("agrees", False)),
                "n": row.note,
                "v": detail.get("model_version") or row.model_version or "",
                "task": row.model,
            },
        )
    bind.execute(
        sa.text(
            "DELETE FROM label_annotations WHERE item_id IN"
            " (SELECT id FROM label_items WHERE domain = :d)"
        ),
        {"d": DOMAIN},
    )
    bind.execute(sa.text("DELETE FROM label_items WHERE domain = :d"), {"d": DOMAIN})
