"""Scoring, labelling and queries over the finance tables. Plain callables: no HTTP here.

:meth:`ScoringService.score_many` handles a whole batch in ONE database transaction: replay
what was already scored, lock the states of the new transactions' customers and terminals,
compute features in arrival order, one XGBoost call (probabilities and contributions), then the state updates,
transaction rows, review-queue rows and prediction records, committed before anything is answered.

Every row belongs to the caller's tenant (``AuditContext.tenant`` / ``Principal.tenant``) and
every query filters by it: another tenant's transaction id is unknown here (404), and scoring
it creates this tenant's own transaction. A micro-batch may mix tenants; each item keeps its own.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from verticals.core.audit import (
    AuditContext,
    Outcome,
    audit_row,
    input_sha256,
    record_action,
    record_rows,
)
from verticals.core.auth import Principal
from verticals.core.db import session_scope
from verticals.core.errors import Conflict, NotFound, VerticalsError
from verticals.domains.finance.decision import decide, top_reasons
from verticals.domains.finance.model.features import apply_label, epoch_seconds, observe
from verticals.domains.finance.model.fraud_model import FraudModel
from verticals.domains.finance.schemas import (
    LabelIn,
    LabelOut,
    ReviewItem,
    ScoreOut,
    TransactionIn,
    TransactionOut,
)
from verticals.domains.finance.settings import MODEL_NAME, DecisionConfig, ServingConfig
from verticals.domains.finance.state import CHUNK, LockedStates
from verticals.domains.finance.tables import LabelRow, ReviewItemRow, TransactionRow

RETRIES = 3
TRANSACTIONS: Table = TransactionRow.__table__  # type: ignore[assignment]
REVIEW_QUEUE: Table = ReviewItemRow.__table__  # type: ignore[assignment]
# Built once: a statement constructed per call costs SQLAlchemy a cache-key walk every time
INSERT_TRANSACTIONS = insert(TRANSACTIONS)
INSERT_REVIEWS = insert(REVIEW_QUEUE)
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
    def __init__(
        self, model: FraudModel, decision: DecisionConfig, serving: ServingConfig
    ) -> None:
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
        for attempt in range(RETRIES):
            try:
                with session_scope() as session:
                    return self._score_in(session, requests)
            except (DBIntegrityError, OperationalError):
                # another replica inserted one of these ids first (it replays now), or the
                # database broke a lock wait (deadlock / busy): run the whole batch again
                if attempt == RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

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
            inserts: list[dict] = []
            reviews: list[dict] = []
            audits: list[dict] = []
            for k, i in enumerate(fresh):
                answers[i] = self._record_one(
                    requests[i],
                    X[k],
                    used_values[k],
                    float(probabilities[k]),
                    contributions[k],
                    elapsed_ms,
                    inserts,
                    reviews,
                    audits,
                )
            # Core executemany inserts, one statement each (no ORM unit of work: it costs more
            # than the model call); transactions before the queue rows that reference them
            session.execute(INSERT_TRANSACTIONS, inserts)
            if reviews:
                session.execute(INSERT_REVIEWS, reviews)
            record_rows(session, audits, model=MODEL_NAME)
            states.write()
        for i, answer in enumerate(answers):
            if answer == -1:
                answers[i] = answers[first_seen[requests[i].key]]
        return answers  # type: ignore[return-value]

    def _record_one(
        self,
        req: ScoreRequest,
        features: np.ndarray,
        used_values: np.ndarray,
        probability: float,
        contributions: np.ndarray,
        latency_ms: float,
        inserts: list[dict],
        reviews: list[dict],
        audits: list[dict],
    ) -> ScoreOut:
        tx = req.tx
        probability = min(1.0, max(0.0, probability))
        decision = decide(probability, tx.amount, self.decision)
        reasons = top_reasons(
            used_values,
            contributions,
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
        body = out.model_dump(mode="json")
        now = datetime.now(UTC)
        inserts.append(
            {
                "tenant": req.ctx.tenant,
                "transaction_id": tx.transaction_id,
                "tx_datetime": tx.tx_datetime,
                "ts": epoch_seconds(tx.tx_datetime),
                "customer_id": tx.customer_id,
                "terminal_id": tx.terminal_id,
                "amount": tx.amount,
                "fraud_probability": probability,
                "decision": decision,
                "model_version": self.version,
                "input_sha256": req.digest,
                "features": [v if math.isfinite(v) else None for v in features.tolist()],
                "response": body,
                "label": None,
                "created_at": now,
            }
        )
        if decision != "approve":
            reviews.append(
                {
                    "tenant": req.ctx.tenant,
                    "transaction_id": tx.transaction_id,
                    "risk": probability,
                    "status": "pending",
                    "created_at": now,
                    "resolved_at": None,
                }
            )
        audits.append(
            audit_row(
                req.ctx,
                digest=req.digest,
                outcome=Outcome(output=body, model_version=self.version),
                latency_ms=latency_ms,
                idempotency_key=tx.transaction_id,
            )
        )
        return out


def _conflict(transaction_id: str) -> Conflict:
    return Conflict(
        f"transaction_id {transaction_id!r} was already scored with a different body",
        {"field": "transaction_id", "transaction_id": transaction_id},
    )


# -------------------------------------------------------------------- labels and queries
def label_transaction(transaction_id: str, body: LabelIn, *, actor: Principal) -> LabelOut:
    """Store a label; it feeds the customer's and terminal's delayed windows (and training).

    Logged under the caller: the API key, or the signed-in analyst (whose own name is stored,
    whatever the body says)."""
    analyst = actor.name if actor.user_id is not None else body.analyst
    tenant = actor.tenant
    key = (tenant, transaction_id)
    with session_scope() as session:
        row = session.get(TransactionRow, key)
        if row is None:
            raise NotFound(f"transaction {transaction_id!r} is unknown", {"field": "id"})
        customer, terminal = (tenant, row.customer_id), (tenant, row.terminal_id)
        states = LockedStates(session, [customer], [terminal])
        row = session.get(TransactionRow, key, populate_existing=True)
        assert row is not None
        delta = int(body.is_fraud) - int(bool(row.label))
        if delta:
            apply_label(states.customers[customer], row.ts, delta)
            apply_label(states.terminals[terminal], row.ts, delta)
            states.write()
        row.label = body.is_fraud
        now = datetime.now(UTC)
        session.add(
            LabelRow(
                tenant=tenant,
                transaction_id=transaction_id,
                is_fraud=body.is_fraud,
                analyst=analyst,
                note=body.note,
                api_key_id=actor.key_id,
                created_at=now,
            )
        )
        record_action(
            session,
            actor,
            domain="finance",
            action="label",
            target=transaction_id,
            detail={"is_fraud": body.is_fraud},
        )
        item = session.get(ReviewItemRow, key)
        if item is not None and item.status != "resolved":
            item.status = "resolved"
            item.resolved_at = now
        return LabelOut(
            transaction_id=transaction_id,
            is_fraud=body.is_fraud,
            analyst=analyst,
            labelled_at=now,
        )


def _transaction_out(row: TransactionRow, status: str | None) -> TransactionOut:
    response = row.response or {}
    return TransactionOut(
        transaction_id=row.transaction_id,
        tx_datetime=row.tx_datetime,
        customer_id=row.customer_id,
        terminal_id=row.terminal_id,
        amount=row.amount,
        fraud_probability=row.fraud_probability,
        decision=row.decision,  # type: ignore[arg-type]
        reasons=response.get("reasons", []),
        model_version=row.model_version,
        label=row.label,
        review_status=status,  # type: ignore[arg-type]
    )


def get_transaction(transaction_id: str, *, tenant: str) -> TransactionOut:
    """One of ``tenant``'s transactions (another tenant's is unknown: NotFound)."""
    with session_scope() as session:
        row = session.get(TransactionRow, (tenant, transaction_id))
        if row is None:
            raise NotFound(f"transaction {transaction_id!r} is unknown", {"field": "id"})
        item = session.get(ReviewItemRow, (tenant, transaction_id))
        return _transaction_out(row, item.status if item else None)


def review_queue(limit: int, *, tenant: str) -> list[ReviewItem]:
    """``tenant``'s pending review items, highest risk first."""
    with session_scope() as session:
        query = (
            select(TransactionRow)
            .join(
                ReviewItemRow,
                (ReviewItemRow.tenant == TransactionRow.tenant)
                & (ReviewItemRow.transaction_id == TransactionRow.transaction_id),
            )
            .where(ReviewItemRow.tenant == tenant, ReviewItemRow.status == "pending")
            .order_by(ReviewItemRow.risk.desc(), TransactionRow.transaction_id)
            .limit(limit)
        )
        return [
            ReviewItem(
                transaction_id=row.transaction_id,
                tx_datetime=row.tx_datetime,
                customer_id=row.customer_id,
                terminal_id=row.terminal_id,
                amount=row.amount,
                fraud_probability=row.fraud_probability,
                decision=row.decision,  # type: ignore[arg-type]
                reasons=(row.response or {}).get("reasons", []),
            )
            for row in session.scalars(query)
        ]


def recent_history(
    *,
    tenant: str,
    customer_id: str | None = None,
    terminal_id: str | None = None,
    limit: int = 20,
) -> list[TransactionOut]:
    """The latest transactions of one of ``tenant``'s customers or terminals (newest first)."""
    with session_scope() as session:
        query = select(TransactionRow).where(TransactionRow.tenant == tenant)
        if customer_id is not None:
            query = query.where(TransactionRow.customer_id == customer_id)
        if terminal_id is not None:
            query = query.where(TransactionRow.terminal_id == terminal_id)
        query = query.order_by(TransactionRow.ts.desc()).limit(limit)
        return [_transaction_out(row, None) for row in session.scalars(query)]
