"""Labels and queries over the finance tables: the analysts' use cases. Plain callables, no
HTTP here; scoring lives in :mod:`~verticals.domains.finance.scoring`.

Every query filters by the caller's tenant (``Principal.tenant``): another tenant's transaction
id is unknown here (404).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from verticals.core.audit import record_action
from verticals.core.auth import Principal
from verticals.core.db import session_scope
from verticals.core.errors import NotFound
from verticals.core.labeling import store
from verticals.core.labeling.tables import LabelItemRow
from verticals.domains.finance.model.features import apply_label
from verticals.domains.finance.schemas import LabelIn, LabelOut, ReviewItem, TransactionOut
from verticals.domains.finance.settings import MODEL_NAME
from verticals.domains.finance.state import LockedStates
from verticals.domains.finance.tables import TransactionRow


# -------------------------------------------------------------------- labels and queries
def fraud_label(is_fraud: bool) -> str:
    """The label an analyst's verdict is stored as in core's labeling queue."""
    return "fraud" if is_fraud else "genuine"


def review_status(item: LabelItemRow | None) -> str | None:
    """``pending`` while the item waits in the queue, ``resolved`` once labelled."""
    if item is None or item.strategy == "feedback":  # labelled without having been queued
        return None
    return "pending" if item.status in ("pending", "assigned") else "resolved"


def _item(session: Session, tenant: str, transaction_id: str) -> LabelItemRow | None:
    return store.item_for(
        session, tenant=tenant, domain="finance", model=MODEL_NAME, subject=transaction_id
    )


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
        item = store.enqueue(
            session,
            tenant=tenant,
            domain="finance",
            model=MODEL_NAME,
            subject=transaction_id,
            priority=0.0,
            strategy="feedback",
            reason="labelled without being queued",
            score=row.fraud_probability,
            model_version=row.model_version,
        )
        annotation = store.annotate(
            session,
            item,
            fraud_label(body.is_fraud),
            labeller=analyst,
            role=actor.role,
            api_key_id=actor.key_id,
            note=body.note,
        )
        now = annotation.created_at
        record_action(
            session,
            actor,
            domain="finance",
            action="label",
            target=transaction_id,
            detail={"is_fraud": body.is_fraud},
        )
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
        return _transaction_out(row, review_status(_item(session, tenant, transaction_id)))


def review_queue(limit: int, *, tenant: str) -> list[ReviewItem]:
    """``tenant``'s pending review items, highest risk first."""
    with session_scope() as session:
        query = (
            select(TransactionRow, LabelItemRow)
            .join(
                LabelItemRow,
                (LabelItemRow.tenant == TransactionRow.tenant)
                & (LabelItemRow.subject == TransactionRow.transaction_id),
            )
            .where(
                LabelItemRow.tenant == tenant,
                LabelItemRow.domain == "finance",
                LabelItemRow.model == MODEL_NAME,
                LabelItemRow.status.in_(("pending", "assigned")),
            )
            .order_by(
                LabelItemRow.second_review.desc(),
                LabelItemRow.priority.desc(),
                TransactionRow.transaction_id,
            )
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
                priority=item.priority,
                why=item.reason,
                second_review=item.second_review,
            )
            for row, item in session.execute(query).all()
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
