"""The evaluator: a daemon thread in the API process that, every ``interval_s``, takes (or
renews) the database lease and, only while it holds it, runs one evaluation pass and sends the
alert transitions to the sinks. Two replicas: one evaluates, the other waits for the lease."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid

from verticals.core.db.session import session_scope
from verticals.core.monitoring import lease, traffic
from verticals.core.monitoring.service import evaluate_once
from verticals.core.monitoring.settings import MonitorSettings, monitor_settings
from verticals.core.monitoring.sinks import dispatch, pump_outbox
from verticals.core.plugins import PluginRegistry

log = logging.getLogger("verticals.monitoring")
LEASE_NAME = "evaluator"


class Evaluator:
    def __init__(self, plugins: PluginRegistry, settings: MonitorSettings) -> None:
        self.plugins = plugins
        self.settings = settings
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.passes = 0

    def tick(self) -> bool:
        """One round: this replica's request counts stored (every replica, for the
        load-shedding rule), then True when it held the lease and evaluated."""
        with session_scope() as session:
            traffic.flush(session, self.holder, self.plugins.domains)
        if not lease.acquire(LEASE_NAME, self.holder, self.settings.lease_s):
            return False
        _, changes = evaluate_once(self.plugins, self.settings)
        dispatch(changes, self.settings)
        pump_outbox(self.settings)  # what a replica that died before sending left behind
        self.passes += 1
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.settings.interval_s):
            try:
                self.tick()
            except Exception:  # the loop outlives a bad pass (database away, plugin error)
                log.exception("monitoring evaluation failed")

    def start(self) -> Evaluator:
        self._thread = threading.Thread(target=self._run, name="verticals-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            lease.release(LEASE_NAME, self.holder)
        except Exception:  # noqa: BLE001 - the database may already be gone at shutdown
            log.debug("could not release the monitoring lease", exc_info=True)


def start_evaluator(plugins: PluginRegistry) -> Evaluator | None:
    """Started by the API's lifespan (None when ``VERTICALS_MONITOR_ENABLED`` is off)."""
    settings = monitor_settings()
    return Evaluator(plugins, settings).start() if settings.enabled else None
