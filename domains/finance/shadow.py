"""Finance's live traffic for shadow evaluation (core/labeling/shadow.py).

A scored transaction keeps the feature row the champion saw (``features``, in the serving
model's feature order; a missing value stored as None) and its answer (``fraud_probability``,
``model_version``): the staged challenger scores that same row, so the two differ only by the
model. A challenger built under another feature config cannot read those rows and is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import and_, or_, select
from verticals.core.errors import InvalidInput
from verticals.core.labeling.shadow import Cursor, ShadowRow, ShadowSource
from verticals.domains.finance.settings import MODEL_NAME
from verticals.domains.finance.tables import TransactionRow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session
    from verticals.domains.finance.model.fraud_model import FraudModel


class FinanceShadowSource(ShadowSource):
    models = (MODEL_NAME,)
    positive_label = "fraud"

    def pending(self, session: Session, model: str, after: Cursor, limit: int) -> list[ShadowRow]:
        served_at, tenant, subject = after
        t = TransactionRow
        later = or_(
            t.created_at > served_at,
            and_(
                t.created_at == served_at,
                or_(t.tenant > tenant, and_(t.tenant == tenant, t.transaction_id > subject)),
            ),
        )
        query = (
            select(
                t.tenant,
                t.transaction_id,
                t.created_at,
                t.model_version,
                t.fraud_probability,
                t.features,
            )
            .where(later)
            .order_by(t.created_at, t.tenant, t.transaction_id)
            .limit(limit)
        )
        return [
            ShadowRow(
                tenant=row.tenant,
                subject=row.transaction_id,
                served_at=row.created_at,
                champion_version=row.model_version,
                champion_score=row.fraud_probability,
                inputs=row.features,
            )
            for row in session.execute(query)
        ]

    def score(self, challenger: Any, inputs: Sequence[Any]) -> Sequence[float]:
        fraud: FraudModel = challenger
        width = len(fraud.feature_names)
        if any(len(row) != width for row in inputs):
            raise InvalidInput(
                f"challenger {fraud.version} reads {width} features; the stored rows were "
                "computed under another feature config",
                {"field": "version"},
            )
        X = np.array(
            [[np.nan if v is None else float(v) for v in row] for row in inputs], dtype=np.float64
        )
        return [float(p) for p in fraud.predict(X)]
