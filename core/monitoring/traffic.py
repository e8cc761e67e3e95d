"""Requests, shed requests and failed requests per domain, for the load-shedding and
error-rate rules.

A shed request (503 with ``Retry-After``: a full micro-batcher queue, the medical decode slots)
or a failed one (any other 5xx) is answered without a prediction record (only answered
predictions are recorded). The HTTP middleware counts every ``/v1/<domain>/`` request, and
every shed and failed one, here in process memory (integer increments under an uncontended
lock: nothing is written on the request path).

Counts must reach the one evaluator of the deployment from every replica (each uvicorn worker
is one): every replica's evaluator thread, lease holder or not, moves its counts into one
``monitor_traffic`` row per domain each ``interval_s`` (:func:`flush`), and the lease holder
sums the rows of the last ``traffic_window_s`` from all replicas (:func:`totals`). A
Prometheus counter per replica would not do: the evaluator sees only its own process's.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from verticals.core.db.base import utcnow
from verticals.core.monitoring.tables import TrafficRow

_lock = threading.Lock()
_counts: dict[str, list[int]] = {}  # domain -> [requests, shed, errors] since the last flush


class Totals(NamedTuple):
    requests: int
    shed: int
    errors: int


def count(domain: str, *, shed: bool = False, error: bool = False) -> None:
    """One answered request of ``domain`` (called by the HTTP middleware)."""
    with _lock:
        found = _counts.get(domain)
        if found is None:
            found = _counts[domain] = [0, 0, 0]
        found[0] += 1
        if shed:
            found[1] += 1
        elif error:
            found[2] += 1


def take() -> dict[str, Totals]:
    """The counts since the last call, reset."""
    global _counts
    with _lock:
        taken, _counts = _counts, {}
    return {domain: Totals(*found) for domain, found in taken.items()}


def flush(
    session: Session,
    replica: str,
    domains: Collection[str],
    now: datetime | None = None,
) -> int:
    """Store this process's counts of ``domains`` (others, e.g. ``ops``, are dropped) as
    ``monitor_traffic`` rows; returns the number of rows."""
    now = now or utcnow()
    rows = [
        TrafficRow(replica=replica[:200], domain=d, requests=n, shed=s, errors=e, created_at=now)
        for d, (n, s, e) in take().items()
        if d in domains and n
    ]
    session.add_all(rows)
    return len(rows)


def totals(session: Session, window_s: float, now: datetime | None = None) -> dict[str, Totals]:
    """Each domain's counts over the last ``window_s``, all replicas together."""
    since = (now or utcnow()) - timedelta(seconds=window_s)
    rows = session.execute(
        select(
            TrafficRow.domain,
            func.sum(TrafficRow.requests),
            func.sum(TrafficRow.shed),
            func.sum(TrafficRow.errors),
        )
        .where(TrafficRow.created_at >= since)
        .group_by(TrafficRow.domain)
    ).all()
    return {d: Totals(int(n or 0), int(s or 0), int(e or 0)) for d, n, s, e in rows}


def prune(session: Session, keep_s: float, now: datetime | None = None) -> None:
    """Drop rows older than ``keep_s`` (the lease holder does, each pass)."""
    since = (now or utcnow()) - timedelta(seconds=keep_s)
    session.execute(delete(TrafficRow).where(TrafficRow.created_at < since))
