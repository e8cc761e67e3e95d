"""Scoring transactions: :meth:`ScoringService.score_many` handles a whole batch in ONE database
transaction: replay what was already scored, lock the states of the new transactions' customers
and terminals, compute features in arrival order, one XGBoost call (probabilities and
contributions), then the state updates, transaction rows, review-queue rows and prediction
records, committed before anything is answered.

Every row belongs to the caller's tenant (``AuditContext.tenant``): another tenant's
transaction id is unknown here, and scoring it creates this tenant's own transaction. A
micro-batch may mix tenants; each item keeps its own.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from verticals.core.audit import AuditContext, Outcome, audit_row, input_sha256, record_rows
from verticals.core.db import session_scope
from verticals.core.db.session import retrying
from verticals.core.errors import Conflict, VerticalsError
from verticals.core.labeling.tables import LabelItemRow
from verticals.domains.finance.decision import decide, label_reason, label_value, top_reasons
from verticals.domains.finance.model.features import epoch_seconds, observe
from verticals.domains.finance.model.fraud_model import FraudModel
from verticals.domains.finance.schemas import ScoreOut, TransactionIn
from verticals.domains.finance.settings import MODEL_NAME, DecisionConfig, ServingConfig
from verticals.domains.finance.state import CHUNK, LockedStates
from verticals.domains.finance.tables import TransactionRow

RETRIES = 3
TRANSACTIONS: Table = TransactionRow.__table__  # type: ignore[assignment]
LABEL_ITEMS: Table = LabelItemRow.__table__  # type: ignore[assignment]
# Built once: a statement constructed per call costs SQLAlchemy a cache-key walk every time
INSERT_TRANSACTIONS = insert(TRANSACTIONS)
INSERT_REVIEWS = insert(LABEL_ITEMS)
SELECT_SCORED = select(
    TRANSACTIONS.c.transaction_id, TRANSACTIONS.c.input_sha256, TRANSACTIONS.c.response
).where(
    TRANSACTIONS.c.tenant == bindparam("tenant"),
    TRANSACTIONS.c.transaction_id.in_(bindparam("ids", expanding=True)),
)
Key = tuple[str, str]  # (tenant, transaction_id)


@dataclass(frozen=True)
class ScoreRequest:
    tx: TransactionIn
    ctx: AuditContext
    digest: str

    @classmethod
    def of(cls, tx: TransactionIn, ctx: AuditContext) -> ScoreRequest:
        return cls(tx=tx, ctx=ctx, digest=input_sha256(tx.model_dump(mode="json")))

    @property
    def key(self) -> Key:
        return (self.ctx.tenant, self.tx.transaction_id)


class ScoringService:
    def __init__(self, model: FraudModel, decision: DecisionConfig, serving: ServingConfig) -> None:
        self.model = model
        self.decision = decision
        self.serving = serving
        self.cfg = model.feature_config
        self._used = model.columns

    @property
    def version(self) -> str:
        return self.model.version

    # ---------------------------------------------------------------- scoring
    def score_many(self, requests: list[ScoreRequest]) -> list[ScoreOut | VerticalsError]:
        """One answer per request, in order: a ScoreOut, or the error for that item (409)."""

        def transaction() -> list[ScoreOut | VerticalsError]:
            with session_scope() as session:
                return self._score_in(session, requests)

        # another replica inserted one of these ids first (it replays now), or the database
        # broke a lock wait (deadlock / busy): run the whole batch again
        return retrying(transaction, attempts=RETRIES, on=(DBIntegrityError, OperationalError))

    def _existing(self, session: Session, keys: list[Key]) -> dict[Key, tuple[str, dict]]:
        """(input digest, stored answer) of the (tenant, id) already scored."""
        found: dict[Key, tuple[str, dict]] = {}
        by_tenant: dict[str, set[str]] = {}
        for tenant, tid in keys:
            by_tenant.setdefault(tenant, set()).add(tid)
        for tenant, ids in sorted(by_tenant.items()):
            unique = sorted(ids)
            for start in range(0, len(unique), CHUNK):
                rows = session.execute(
                    SELECT_SCORED, {"tenant": tenant, "ids": unique[start : start + CHUNK]}
                )
                found.update({(tenant, tid): (digest, body) for tid, digest, body in rows})
        return found

    def _score_in(
        self, session: Session, requests: list[ScoreRequest]
    ) -> list[ScoreOut | VerticalsError]:
        started = time.perf_counter()
        existing = self._existing(session, [r.key for r in requests])
        # replays touch no state; an id another replica inserts after this read makes the
        # insert below fail, and score_many runs the batch again (as a replay)
        new = [r for r in requests if r.key not in existing]
        states = LockedStates(
            session,
            ((r.ctx.tenant, r.tx.customer_id) for r in new),
            ((r.ctx.tenant, r.tx.terminal_id) for r in new),
        )
        answers: list[ScoreOut | VerticalsError | None] = [None] * len(requests)
        first_seen: dict[Key, int] = {}
        fresh: list[int] = []
        rows: list[list[float]] = []
        for i, req in enumerate(requests):
            tx = req.tx
            tid = tx.transaction_id
            previous = existing.get(req.key)
            if previous is not None:
                digest, stored = previous
                answers[i] = (
                    ScoreOut.model_validate(stored) if digest == req.digest else _conflict(tid)
                )
                continue
            if req.key in first_seen:
                j = first_seen[req.key]
                answers[i] = -1 if requests[j].digest == req.digest else _conflict(tid)  # type: ignore[assignment]
                continue
            first_seen[req.key] = i
            ts = epoch_seconds(tx.tx_datetime)
            cstate = states.customers[(req.ctx.tenant, tx.customer_id)]
            tstate = states.terminals[(req.ctx.tenant, tx.terminal_id)]
            rows.append(observe(ts, tx.amount, 0, cstate, tstate, self.cfg))
            fresh.append(i)
        if fresh:
            X = np.asarray(rows, dtype=np.float64)
            probabilities, contributions = self.model.predict_with_contributions(X)
            used_values = X[:, self._used]
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            batch = _BatchRows(self.decision)
            for k, i in enumerate(fresh):
                answers[i] = self._answer(
                    requests[i],
                    _Scored(X[k], used_values[k], float(probabilities[k]), contributions[k]),
                    elapsed_ms,
                    batch,
                )
            batch.write(session)
            states.write()
        for i, answer in enumerate(answers):
            if answer == -1:
                answers[i] = answers[first_seen[requests[i].key]]
        return answers  # type: ignore[return-value]

    def _answer(
        self, req: ScoreRequest, scored: _Scored, latency_ms: float, batch: _BatchRows
    ) -> ScoreOut:
        """The answer to one new transaction; its rows join ``batch``."""
        tx = req.tx
        probability = min(1.0, max(0.0, scored.probability))
        decision = decide(probability, tx.amount, self.decision)
        reasons = top_reasons(
            scored.used_values,
            scored.contributions,
            self.model.meta.used_features,
            self.serving.n_reasons,
            self.cfg.label_delay_days,
        )
        out = ScoreOut(
            transaction_id=tx.transaction_id,
            fraud_probability=round(probability, 6),
            decision=decision,
            reasons=reasons,
            model_version=self.version,
        )
        batch.add(req, out, scored.features, probability, latency_ms)
        return out


@dataclass(frozen=True)
class _Scored:
    """What the model said about one transaction."""

    features: np.ndarray
    used_values: np.ndarray
    probability: float
    contributions: np.ndarray


@dataclass
class _BatchRows:
    """The rows a batch writes, collected per answer and inserted with one executemany each
    (no ORM unit of work: it costs more than the model call)."""

    decision: DecisionConfig
    transactions: list[dict] = field(default_factory=list)
    reviews: list[dict] = field(default_factory=list)
    audits: list[dict] = field(default_factory=list)

    def add(
        self,
        req: ScoreRequest,
        out: ScoreOut,
        features: np.ndarray,
        probability: float,
        latency_ms: float,
    ) -> None:
        tx, body, now = req.tx, out.model_dump(mode="json"), datetime.now(UTC)
        self.transactions.append(
            {
                "tenant": req.ctx.tenant,
                "transaction_id": tx.transaction_id,
                "tx_datetime": tx.tx_datetime,
                "ts": epoch_seconds(tx.tx_datetime),
                "customer_id": tx.customer_id,
                "terminal_id": tx.terminal_id,
                "amount": tx.amount,
                "fraud_probability": probability,
                "decision": out.decision,
                "model_version": out.model_version,
                "input_sha256": req.digest,
                "features": [v if math.isfinite(v) else None for v in features.tolist()],
                "response": body,
                "label": None,
                "created_at": now,
            }
        )
        if out.decision != "approve":
            value = label_value(probability, tx.amount, self.decision)
            self.reviews.append(
                {
                    "tenant": req.ctx.tenant,
                    "domain": "finance",
                    "model": MODEL_NAME,
                    "subject": tx.transaction_id,
                    "prediction_id": None,
                    "model_version": out.model_version,
                    "score": probability,
                    "priority": value,
                    "strategy": "cost",
                    "reason": label_reason(probability, tx.amount, value),
                    "status": "pending",
                    "assigned_to": None,
                    "assigned_at": None,
                    "label": None,
                    "annotations": 0,
                    "agreement": None,
                    "issue_score": None,
                    "second_review": False,
                    "created_at": now,
                    "updated_at": now,
                    "labelled_at": None,
                }
            )
        self.audits.append(
            audit_row(
                req.ctx,
                digest=req.digest,
                outcome=Outcome(output=body, model_version=out.model_version),
                latency_ms=latency_ms,
                idempotency_key=tx.transaction_id,
            )
        )

    def write(self, session: Session) -> None:
        """Transactions before the queue rows that reference them, then the records."""
        session.execute(INSERT_TRANSACTIONS, self.transactions)
        if self.reviews:
            session.execute(INSERT_REVIEWS, self.reviews)
        record_rows(session, self.audits, model=MODEL_NAME)


def _conflict(transaction_id: str) -> Conflict:
    return Conflict(
        f"transaction_id {transaction_id!r} was already scored with a different body",
        {"field": "transaction_id", "transaction_id": transaction_id},
    )
