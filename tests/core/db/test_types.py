"""UtcDateTime: aware UTC in and out, on SQLite as on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError
from verticals.core.db import session_scope
from verticals.core.db.models import UserRow


def test_aware_in_aware_utc_out(db):
    plus_two = timezone(timedelta(hours=2))
    with session_scope() as session:
        session.add(
            UserRow(
                name="t",
                role="viewer",
                tenant="default",
                source="local",
                failed_sign_ins=0,
                created_at=datetime(2026, 1, 1, 12, tzinfo=plus_two),
            )
        )
    with session_scope() as session:
        created = session.scalar(select(UserRow.created_at))
    assert created == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert created.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused(db):
    with pytest.raises(StatementError, match="timezone-aware"), session_scope() as session:
        session.add(
            UserRow(
                name="n",
                role="viewer",
                tenant="default",
                source="local",
                failed_sign_ins=0,
                created_at=datetime(2026, 1, 1),
            )
        )
