"""Where alert transitions go: the log, and a webhook (JSON body signed with HMAC-SHA256 in
``X-Verticals-Signature: sha256=<hex>``, retried with exponential backoff). Every delivery's
outcome is recorded in ``monitor_deliveries``. Transitions are recorded in the outbox with the
transition itself and marked sent here; :func:`pump_outbox` sends what a dead replica left."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from verticals.core.db.base import utcnow
from verticals.core.db.session import session_scope
from verticals.core.monitoring.alerts import Change
from verticals.core.monitoring.settings import MonitorSettings
from verticals.core.monitoring.tables import AlertDeliveryRow, OutboxRow

log = logging.getLogger("verticals.monitoring.alerts")
SIGNATURE_HEADER = "X-Verticals-Signature"


@dataclass(frozen=True)
class Delivery:
    status: str  # delivered | failed
    attempts: int
    response_code: int | None = None
    error: str | None = None


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def body_of(change: Change) -> bytes:
    return json.dumps(
        {"transition": change.transition, "alert": change.alert.model_dump(mode="json")},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()


def log_sink(change: Change) -> Delivery:
    alert = change.alert
    log.warning(
        "alert %s %s [%s/%s %s]: %s",
        alert.id,
        change.transition,
        alert.domain,
        alert.model,
        alert.rule,
        alert.summary,
    )
    return Delivery(status="delivered", attempts=1)


def post_webhook(
    change: Change,
    *,
    url: str,
    secret: bytes | None,
    attempts: int,
    backoff_s: float,
    timeout_s: float,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    body = body_of(change)
    headers = {"Content-Type": "application/json", "User-Agent": "verticals-monitoring"}
    if secret is not None:
        headers[SIGNATURE_HEADER] = signature(secret, body)
    code: int | None = None
    error: str | None = None
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
                code = response.status
            return Delivery(status="delivered", attempts=attempt, response_code=code)
        except urllib.error.HTTPError as exc:
            code, error = exc.code, f"HTTP {exc.code}"
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                return Delivery(status="failed", attempts=attempt, response_code=code, error=error)
        except (urllib.error.URLError, OSError) as exc:
            code, error = None, f"{type(exc).__name__}: {exc}"
        if attempt < attempts:
            sleep(backoff_s * 2 ** (attempt - 1))
    return Delivery(status="failed", attempts=attempts, response_code=code, error=error)


def dispatch(changes: list[Change], settings: MonitorSettings) -> list[Delivery]:
    """Send each change to the log and (when configured) the webhook; record each outcome."""
    outcomes: list[tuple[Change, str, Delivery]] = []
    for change in changes:
        outcomes.append((change, "log", log_sink(change)))
        if settings.webhook_url:
            secret = settings.webhook_secret
            delivery = post_webhook(
                change,
                url=settings.webhook_url,
                secret=secret.get_secret_value().encode() if secret is not None else None,
                attempts=settings.webhook_attempts,
                backoff_s=settings.webhook_backoff_s,
                timeout_s=settings.webhook_timeout_s,
            )
            if delivery.status != "delivered":
                log.error(
                    "webhook delivery of alert %s failed: %s", change.alert.id, delivery.error
                )
            outcomes.append((change, "webhook", delivery))
    sent = [c.outbox_id for c in changes if c.outbox_id is not None]
    if outcomes or sent:
        with session_scope() as session:
            if sent:
                session.execute(
                    update(OutboxRow)
                    .where(OutboxRow.id.in_(sent), OutboxRow.sent_at.is_(None))
                    .values(sent_at=utcnow())
                )
            for change, sink, delivery in outcomes:
                session.add(
                    AlertDeliveryRow(
                        alert_id=change.alert.id,
                        sink=sink,
                        transition=change.transition,
                        status=delivery.status,
                        attempts=delivery.attempts,
                        response_code=delivery.response_code,
                        error=delivery.error,
                        created_at=utcnow(),
                    )
                )
    return [delivery for _, _, delivery in outcomes]


def pump_outbox(settings: MonitorSettings, *, now: datetime | None = None) -> int:
    """Send the transitions recorded at least ``outbox_grace_s`` ago and never marked sent (the
    replica that recorded them died first); run by the lease holder. Returns how many."""
    due = (now or utcnow()) - timedelta(seconds=settings.outbox_grace_s)
    with session_scope() as session:
        rows = session.scalars(
            select(OutboxRow)
            .where(OutboxRow.sent_at.is_(None), OutboxRow.created_at <= due)
            .order_by(OutboxRow.id)
            .limit(100)
        ).all()
        changes = [Change.model_validate({**row.change, "outbox_id": row.id}) for row in rows]
    if changes:
        log.warning("sending %d alert transition(s) left unsent by a replica", len(changes))
        dispatch(changes, settings)
    return len(changes)
