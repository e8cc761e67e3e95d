"""What core's monitoring watches in manufacturing: the RUL model's input sensors, read from
``manufacturing_readings`` (every stored cycle; newest rows by primary key), and its output,
the predicted RUL, read from the prediction records every estimate already writes (those of
the production version), so ingestion and estimation do no extra work.

Reference: the shipped demo engines (C-MAPSS FD001 test units 1-12), the same distribution as
the model's training fleet; for the output, the model's estimate after every cycle of those
engines (a fleet at every stage of life), computed once per version when its profile is built.
The sensors are the model's own (``RulModel.used_sensors``) when it is loaded, else FD001's
informative ones (the seven constant sensors carry no signal), and the output is watched only
then.

Not watched: the failure-risk model. Its answers are recorded, but not its inputs (only their
hash), and no sample of its outputs ships with it to compare with. Nor performance: the domain
stores no maintenance outcomes to join to the estimates.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session
from verticals.core.db.base import utcnow
from verticals.core.db.models import PredictionRecordRow
from verticals.core.monitoring.spec import (
    Columns,
    WatchedFeature,
    WatchedModel,
    WatchSpec,
    Window,
    WindowConfig,
)
from verticals.core.registry.store import production_version
from verticals.domains.manufacturing.model import shipping
from verticals.domains.manufacturing.model.cmapss import READING_COLUMNS
from verticals.domains.manufacturing.tables import ReadingRow

if TYPE_CHECKING:
    from verticals.domains.manufacturing.model.rul import RulModel

NAME = "manufacturing"
OUTPUT = "rul"  # the estimate's field, as recorded (HealthOut.rul)

INFORMATIVE_SENSORS: tuple[str, ...] = tuple(
    f"sensor_{i}" for i in (2, 3, 4, 7, 8, 9, 11, 12, 13, 14, 15, 17, 20, 21)
)


def _demo_histories() -> list[np.ndarray]:
    from verticals.domains.manufacturing.model.cmapss import histories, read_cmapss
    from verticals.shared_models.manufacturing import DEMO_ENGINES

    _, found = histories(read_cmapss(DEMO_ENGINES))
    return list(found)


def reference_readings() -> np.ndarray:
    """(cycles, 24) readings of the shipped demo engines, in READING_COLUMNS order."""
    return np.vstack(_demo_histories())


def reference_rul(model: RulModel) -> np.ndarray:
    """``model``'s RUL estimate after every cycle of every demo engine (as the asset page's
    trajectory computes it): deterministic, 1,388 estimates in one batch."""
    prefixes = [h[: i + 1] for h in _demo_histories() for i in range(len(h))]
    return np.array([e.rul for e in model.predict(prefixes)], dtype=np.float64)


def recorded_outputs(
    session: Session, model: str, field: str, config: WindowConfig
) -> tuple[np.ndarray, list]:
    """``field`` of the newest ``config.max_count`` recorded answers of ``model``'s production
    version (no older than ``config.max_age_s``), oldest first, with their times."""
    version = production_version(session, NAME, model)
    if version is None:
        return np.empty(0), []
    query = (
        select(PredictionRecordRow.output, PredictionRecordRow.created_at)
        .where(
            PredictionRecordRow.domain == NAME,
            PredictionRecordRow.model_version == version.version,
        )
        .order_by(PredictionRecordRow.id.desc())
    )
    if config.max_age_s is not None:
        since = utcnow() - timedelta(seconds=config.max_age_s)
        query = query.where(PredictionRecordRow.created_at >= since)
    found = [
        (float(output[field]), at)
        for output, at in session.execute(query.limit(config.max_count))
        if isinstance(output, dict) and isinstance(output.get(field), int | float)
    ][::-1]
    return np.array([v for v, _ in found], dtype=np.float64), [at for _, at in found]


def _columns(readings: np.ndarray, sensors: Sequence[str]) -> dict[str, np.ndarray]:
    readings = np.atleast_2d(readings)
    return {name: readings[:, READING_COLUMNS.index(name)] for name in sensors}


def watch_spec(
    sensors: Sequence[str] = INFORMATIVE_SENSORS, model: RulModel | None = None
) -> WatchSpec:
    """The RUL model's sensors, and with the loaded ``model`` its output too."""
    sensors = tuple(sensors)

    def reference() -> Columns:
        columns = _columns(reference_readings(), sensors)
        if model is not None:
            columns[OUTPUT] = reference_rul(model)
        return columns

    def current(session: Session, config: WindowConfig) -> Window:
        query = select(ReadingRow.values, ReadingRow.received_at).order_by(ReadingRow.id.desc())
        if config.max_age_s is not None:
            since = utcnow() - timedelta(seconds=config.max_age_s)
            query = query.where(ReadingRow.received_at >= since)
        rows = list(session.execute(query.limit(config.max_count)).all())[::-1]
        values = np.array([r[0] for r in rows], dtype=np.float64)
        columns = _columns(values, sensors) if rows else {}
        if model is not None:
            # estimates are made when an asset's health is asked for, not at every reading:
            # fewer than min_count of them are too few to judge, and are left out
            outputs, _ = recorded_outputs(session, shipping.RUL, OUTPUT, config)
            if len(outputs) >= config.min_count:
                columns[OUTPUT] = outputs
        return Window(
            columns=columns,
            count=len(rows),
            start=rows[0][1] if rows else None,
            end=rows[-1][1] if rows else None,
        )

    return WatchSpec(
        models=(
            WatchedModel(
                model=shipping.RUL,
                features=tuple(WatchedFeature(name) for name in sensors)
                + ((WatchedFeature(OUTPUT, output=True),) if model is not None else ()),
                current=current,
                reference=reference,
            ),
        )
    )
