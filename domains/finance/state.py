"""Online feature state in the database, locked for read-modify-write.

Rows are created if missing (INSERT .. ON CONFLICT DO NOTHING) and then read with
``SELECT .. FOR UPDATE`` in key order, customers before terminals, so concurrent transactions
for the same customer or terminal queue up instead of losing updates and never deadlock.
On SQLite the session's ``BEGIN IMMEDIATE`` already serialises writers (FOR UPDATE is a no-op).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session
from verticals.core.db.base import utcnow
from verticals.domains.finance.features import Buckets, state_from_json, state_to_json
from verticals.domains.finance.tables import CustomerStateRow, TerminalStateRow

CHUNK = 2000  # rows per statement: stays under SQLite's bound-parameter limit


def _insert_missing(session: Session, table: type, key: str, ids: list[str]) -> None:
    """Create empty state rows; a row another transaction created meanwhile is left alone."""
    dialect = session.get_bind().dialect.name
    now = utcnow()
    rows = [{key: i, "buckets": {}, "updated_at": now} for i in ids]
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - other engines: writers are serialised by their own locking
        from sqlalchemy import insert as plain_insert

        session.execute(plain_insert(table), rows)
        return
    # executemany with one cached statement
    session.execute(insert(table).on_conflict_do_nothing(index_elements=[key]), rows)


class LockedStates:
    """Customer and terminal states of one transaction, loaded locked; :meth:`write` saves them."""

    def __init__(self, session: Session, customers: Iterable[str], terminals: Iterable[str]):
        self.session = session
        self.customers: dict[str, Buckets] = {}
        self.terminals: dict[str, Buckets] = {}
        self._rows: dict[tuple[str, str], CustomerStateRow | TerminalStateRow] = {}
        for kind, table, key, ids, target in (
            ("c", CustomerStateRow, "customer_id", sorted(set(customers)), self.customers),
            ("t", TerminalStateRow, "terminal_id", sorted(set(terminals)), self.terminals),
        ):
            if not ids:
                continue
            column = getattr(table, key)
            found = self._lock(table, key, column, ids, kind, target)
            missing = [i for i in ids if i not in found]
            if missing:
                _insert_missing(session, table, key, missing)
                self._lock(table, key, column, missing, kind, target)

    def _lock(
        self, table: type, key: str, column, ids: list[str], kind: str, target: dict
    ) -> set[str]:
        """SELECT .. FOR UPDATE in key order; returns the ids found."""
        found: set[str] = set()
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            query = select(table).where(column.in_(chunk)).order_by(column).with_for_update()
            for row in self.session.scalars(query.execution_options(populate_existing=True)):
                ident = getattr(row, key)
                target[ident] = state_from_json(row.buckets)
                self._rows[(kind, ident)] = row
                found.add(ident)
        return found

    def write(self) -> None:
        now = utcnow()
        for (kind, ident), row in self._rows.items():
            state = self.customers[ident] if kind == "c" else self.terminals[ident]
            row.buckets = state_to_json(state)  # a new dict: SQLAlchemy sees the change
            row.updated_at = now
