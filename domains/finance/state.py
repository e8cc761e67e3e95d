"""Online feature state in the database, locked for read-modify-write, per tenant: a state is
keyed (tenant, customer_id) or (tenant, terminal_id), so two banks' cards never share one.

One statement per table both creates the missing rows and locks and reads them all:
``INSERT .. VALUES (sorted (tenant, id)) ON CONFLICT DO UPDATE SET id = excluded.id
RETURNING tenant, id, buckets``.
On PostgreSQL the upsert row-locks every row it touches, in key order (customers before
terminals), so concurrent transactions for the same customer or terminal queue up instead of
losing updates, and never deadlock. On SQLite the session's ``BEGIN IMMEDIATE`` already
serialises writers. :meth:`LockedStates.write` saves the new states with one executemany UPDATE.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, bindparam, update
from sqlalchemy.orm import Session
from verticals.core.db.base import utcnow
from verticals.domains.finance.model.features import Buckets, state_from_json, state_to_json
from verticals.domains.finance.tables import CustomerStateRow, TerminalStateRow

CHUNK = 2000  # ids per IN (..) query: stays under SQLite's bound-parameter limit
Ident = tuple[str, str]  # (tenant, customer_id or terminal_id)

CUSTOMERS: Table = CustomerStateRow.__table__  # type: ignore[assignment]
TERMINALS: Table = TerminalStateRow.__table__  # type: ignore[assignment]


@lru_cache(maxsize=8)
def _upsert(dialect: str, table: Table, key: str) -> Any:
    """The cached statement: executemany over ``{tenant, key, buckets, updated_at}`` rows,
    which SQLAlchemy sends as multi-row VALUES with RETURNING ("insertmanyvalues")."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise NotImplementedError(
            f"finance online state supports PostgreSQL and SQLite, not {dialect}"
        )
    statement = insert(table)
    return statement.on_conflict_do_update(
        index_elements=["tenant", key], set_={key: statement.excluded[key]}
    ).returning(table.c.tenant, table.c[key], table.c.buckets)


@lru_cache(maxsize=8)
def _update(table: Table, key: str) -> Any:
    return (
        update(table)
        .where(table.c.tenant == bindparam("owner"), table.c[key] == bindparam("ident"))
        .values(
            buckets=bindparam("new_buckets", type_=table.c.buckets.type),
            updated_at=bindparam("now", type_=table.c.updated_at.type),
        )
    )


def _lock(session: Session, table: Table, key: str, ids: list[Ident]) -> dict[Ident, Buckets]:
    """Create the missing rows of ``ids`` (sorted), lock all of them, return their states."""
    if not ids:
        return {}
    statement = _upsert(session.get_bind().dialect.name, table, key)
    now = utcnow()
    rows = [{"tenant": t, key: i, "buckets": {}, "updated_at": now} for t, i in ids]
    return {
        (tenant, ident): state_from_json(buckets)
        for tenant, ident, buckets in session.execute(statement, rows)
    }


class LockedStates:
    """Customer and terminal states of some transactions, locked; :meth:`write` saves them.
    Both are keyed (tenant, id)."""

    def __init__(
        self, session: Session, customers: Iterable[Ident], terminals: Iterable[Ident]
    ) -> None:
        self.session = session
        self.customers = _lock(session, CUSTOMERS, "customer_id", sorted(set(customers)))
        self.terminals = _lock(session, TERMINALS, "terminal_id", sorted(set(terminals)))

    def write(self) -> None:
        now = utcnow()
        for table, key, states in (
            (CUSTOMERS, "customer_id", self.customers),
            (TERMINALS, "terminal_id", self.terminals),
        ):
            if not states:
                continue
            self.session.execute(
                _update(table, key),
                [
                    {"owner": t, "ident": i, "new_buckets": state_to_json(s), "now": now}
                    for (t, i), s in states.items()
                ],
            )
