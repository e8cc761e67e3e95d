"""What core's monitoring watches in manufacturing: the RUL model's input sensors, read from
``manufacturing_readings`` (every stored cycle; newest rows by primary key), so ingestion and
estimation do no extra work.

Reference: the shipped demo engines (C-MAPSS FD001 test units 1-12), the same distribution as
the model's training fleet. The sensors are the model's own (``RulModel.used_sensors``) when it
is loaded, else FD001's informative ones (the seven constant sensors carry no signal).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session
from verticals.core.db.base import utcnow
from verticals.core.monitoring.spec import (
    Columns,
    WatchedFeature,
    WatchedModel,
    WatchSpec,
    Window,
    WindowConfig,
)
from verticals.domains.manufacturing.model import shipping
from verticals.domains.manufacturing.model.cmapss import READING_COLUMNS
from verticals.domains.manufacturing.tables import ReadingRow

INFORMATIVE_SENSORS: tuple[str, ...] = tuple(
    f"sensor_{i}" for i in (2, 3, 4, 7, 8, 9, 11, 12, 13, 14, 15, 17, 20, 21)
)


def reference_readings() -> np.ndarray:
    """(cycles, 24) readings of the shipped demo engines, in READING_COLUMNS order."""
    from verticals.domains.manufacturing.model.cmapss import histories, read_cmapss
    from verticals.shared_models.manufacturing import DEMO_ENGINES

    _, found = histories(read_cmapss(DEMO_ENGINES))
    return np.vstack(found)


def _columns(readings: np.ndarray, sensors: Sequence[str]) -> dict[str, np.ndarray]:
    readings = np.atleast_2d(readings)
    return {name: readings[:, READING_COLUMNS.index(name)] for name in sensors}


def watch_spec(sensors: Sequence[str] = INFORMATIVE_SENSORS) -> WatchSpec:
    sensors = tuple(sensors)

    def reference() -> Columns:
        return _columns(reference_readings(), sensors)

    def current(session: Session, config: WindowConfig) -> Window:
        query = select(ReadingRow.values, ReadingRow.received_at).order_by(ReadingRow.id.desc())
        if config.max_age_s is not None:
            since = utcnow() - timedelta(seconds=config.max_age_s)
            query = query.where(ReadingRow.received_at >= since)
        rows = list(session.execute(query.limit(config.max_count)).all())[::-1]
        values = np.array([r[0] for r in rows], dtype=np.float64)
        return Window(
            columns=_columns(values, sensors) if rows else {},
            count=len(rows),
            start=rows[0][1] if rows else None,
            end=rows[-1][1] if rows else None,
        )

    return WatchSpec(
        models=(
            WatchedModel(
                model=shipping.RUL,
                features=tuple(WatchedFeature(name) for name in sensors),
                current=current,
                reference=reference,
            ),
        )
    )
