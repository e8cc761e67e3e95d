"""A reference profile is built with no transaction open: on SQLite every transaction holds
the write lock from its start, and a slow build (medical: ~2,000 images through the network)
inside one stalled every scoring request until it ended."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
from verticals.core.db import session_scope
from verticals.core.db.base import utcnow
from verticals.core.monitoring.profile import load_reference
from verticals.core.monitoring.service import evaluate_once, find_watched, prepare_reference
from verticals.core.monitoring.settings import MonitorSettings
from verticals.core.monitoring.tables import TrafficRow
from verticals.core.registry.store import production_version

from tests.core.monitoring.conftest import reference


def _write_elsewhere() -> float | None:
    """Seconds a write transaction on another thread takes, None if not done in 3 s."""
    took: list[float] = []

    def write() -> None:
        started = utcnow()
        with session_scope() as session:
            session.add(
                TrafficRow(
                    replica="probe", domain="x", requests=1, shed=0, errors=0, created_at=started
                )
            )
        took.append((utcnow() - started).total_seconds())

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    thread.join(timeout=3)
    return took[0] if took else None


def test_the_reference_is_built_while_others_can_write(synth) -> None:
    seen: list[float | None] = []

    def probing_reference() -> dict[str, np.ndarray]:
        seen.append(_write_elsewhere())
        return reference()

    watched = replace(find_watched(synth, "synth", "m"), reference=probing_reference)
    prepare_reference("synth", watched)
    assert len(seen) == 1 and seen[0] is not None and seen[0] < 1.0
    with session_scope() as session:
        version = production_version(session, "synth", "m")
        assert load_reference(session, version) is not None
    prepare_reference("synth", watched)  # registered: not built again
    assert len(seen) == 1
    evaluate_once(synth, MonitorSettings())  # and the pass uses it
