"""Labels and queries over the finance tables: the analysts' use cases. Plain callables, no
HTTP here; scoring lives in :mod:`~verticals.domains.finance.scoring`.

Every query filters by the caller's tenant (``Principal.tenant``): another tenant's transaction
id is unknown here (404).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from verticals.core.audit import record_action
from verticals.core.auth import Principal
from verticals.core.db import session_scope
from verticals.core.errors import NotFound
from verticals.domains.finance.model.features import apply_label
from verticals.domains.finance.schemas import LabelIn, LabelOut, ReviewItem, TransactionOut
from verticals.domains.finance.state import LockedStates
from verticals.domains.finance.tables import LabelRow, ReviewItemRow, TransactionRow


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
