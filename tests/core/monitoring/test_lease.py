from __future__ import annotations

from datetime import timedelta

from verticals.core.db.base import utcnow
from verticals.core.monitoring.lease import acquire, release


def test_one_holder_at_a_time_until_expiry_or_release(db) -> None:
    now = utcnow()
    assert acquire("evaluator", "a", 60, now=now)
    assert not acquire("evaluator", "b", 60, now=now + timedelta(seconds=1))
    assert acquire("evaluator", "a", 60, now=now + timedelta(seconds=30))  # renewal
    assert acquire("evaluator", "b", 60, now=now + timedelta(seconds=91))  # a's expired
    assert not acquire("evaluator", "a", 60, now=now + timedelta(seconds=92))
    release("evaluator", "b")
    assert acquire("evaluator", "a", 60)
