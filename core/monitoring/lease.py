"""A database lease: one evaluator per deployment, whichever replica holds it.

Taking or renewing is one conditional UPDATE (``holder = me OR expired``), atomic on SQLite and
PostgreSQL alike; the first taker INSERTs, and a concurrent INSERT loses on the primary key.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, or_, update
from sqlalchemy.exc import IntegrityError
from verticals.core.db.base import utcnow
from verticals.core.db.session import session_scope
from verticals.core.monitoring.tables import MonitorLeaseRow


def acquire(name: str, holder: str, ttl_s: float, now: datetime | None = None) -> bool:
    """Take or renew lease ``name`` for ``holder`` until ``now + ttl_s``; False if another
    holder's lease has not yet expired."""
    now = now or utcnow()
    expires = now + timedelta(seconds=ttl_s)
    with session_scope() as session:
        result = session.execute(
            update(MonitorLeaseRow)
            .where(
                MonitorLeaseRow.name == name,
                or_(MonitorLeaseRow.holder == holder, MonitorLeaseRow.expires_at < now),
            )
            .values(holder=holder, expires_at=expires)
        )
        if cast("CursorResult[Any]", result).rowcount == 1:
            return True
        if session.get(MonitorLeaseRow, name) is not None:
            return False
    try:
        with session_scope() as session:
            session.add(MonitorLeaseRow(name=name, holder=holder, expires_at=expires))
        return True
    except IntegrityError:
        return False


def release(name: str, holder: str) -> None:
    with session_scope() as session:
        session.execute(
            update(MonitorLeaseRow)
            .where(MonitorLeaseRow.name == name, MonitorLeaseRow.holder == holder)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
