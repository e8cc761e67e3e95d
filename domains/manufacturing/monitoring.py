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

The failure-risk model is watched for performance only: the readings scored for a registered
machine are queued in core's labeling queue with their score, and a planner's maintenance outcome
labels the newest one (``outcomes.py``); those labels against the scores give precision, recall,
AP and ROC AUC. No drift: no sample of its inputs or outputs ships with the model to compare with.
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
from verticals.core.labeling.tables import LabelItemRow
from verticals.core.monitoring.spec import (
    Columns,
    Labelled,
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


def _scored_readings(session: Session, config: WindowConfig) -> list:
    """(score, label) of the failure model's newest queued readings (production version)."""
    version = production_version(session, NAME, shipping.FAILURE)
    if version is None:
        return []
    query = (
        select(LabelItemRow.score, LabelItemRow.label, LabelItemRow.created_at)
        .where(
            LabelItemRow.domain == NAME,
            LabelItemRow.model == shipping.FAILURE,
            LabelItemRow.model_version == version.version,
            LabelItemRow.score.is_not(None),
        )
        .order_by(LabelItemRow.id.desc())
    )
    if config.max_age_s is not None:
        query = query.where(
            LabelItemRow.created_at >= utcnow() - timedelta(seconds=config.max_age_s)
        )
    return list(session.execute(query.limit(config.max_count)).all())[::-1]


def failure_window(session: Session, config: WindowConfig) -> Window:
    rows = _scored_readings(session, config)
    return Window(
        columns={},
        count=len(rows),
        start=rows[0][2] if rows else None,
        end=rows[-1][2] if rows else None,
    )


def failure_outcomes(session: Session, config: WindowConfig) -> Labelled:
    """The scores of the window's readings, and of those with a recorded outcome, whether the
    machine failed (1) or ran fine (0)."""
    from verticals.domains.manufacturing.outcomes import FAILED

    rows = _scored_readings(session, config)
    scores = np.array([r[0] for r in rows], dtype=np.float64)
    known = np.array([r[1] is not None for r in rows], dtype=bool)
    return Labelled(
        scores=scores[known] if rows else scores,
        labels=np.array([r[1] == FAILED for r in rows if r[1] is not None], dtype=bool),
        all_scores=scores,
    )


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
            WatchedModel(
                model=shipping.FAILURE,
                features=(),  # performance only (see the module's docstring)
                current=failure_window,
                reference=dict,
                labels=failure_outcomes,
                # machines are scored by the few a day: a month's readings, from 20 on
                window=WindowConfig(max_count=1000, max_age_s=30 * 86400.0, min_count=20),
            ),
        )
    )
