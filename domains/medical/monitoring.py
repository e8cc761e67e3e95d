"""What core's monitoring watches in medical, per task (registry name = task name): the model
input's intensity statistics, a 16-dimensional random projection of the penultimate layer, the
OOD score and the output probability, read from ``medical_studies`` (the study path stores each
study's :func:`image_summaries` row when it predicts), so prediction does no extra pass.

Reference: the shipped MedMNIST data of the task (train + val, which the production recipe was
cross-validated and trained on; at most :data:`REFERENCE_IMAGES` of them, a fixed sample), run
through the production classifier and the very same :func:`image_summaries`. Built once per
model version: core registers the profile (sha256) and reads it back from then on. The plugin
hands over its loaded classifiers (see :func:`reference_columns` for why).

Labels: clinicians' reviews (the latest per study) joined to the window's studies; a review
naming the task's positive label is a positive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import lru_cache
from typing import Any

import numpy as np
from sqlalchemy import Select, select
from sqlalchemy.orm import Session
from verticals.core.db.base import utcnow
from verticals.core.errors import ModelUnavailable
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
from verticals.domains.medical import model_api
from verticals.domains.medical.tables import StudyRow

INTENSITY: tuple[str, ...] = (
    "intensity_mean",
    "intensity_std",
    "intensity_p05",
    "intensity_p50",
    "intensity_p95",
)
EMBEDDING = "embedding"
EMBEDDING_DIMS = 16
PROJECTION_SEED = 20261203  # fixed: live rows and every reference share one projection
REFERENCE_IMAGES = 2000
REFERENCE_SEED = 0
DECIMALS = 6

FEATURES: tuple[WatchedFeature, ...] = (
    *(WatchedFeature(name) for name in INTENSITY),
    WatchedFeature(EMBEDDING, "embedding"),
    WatchedFeature("ood_score"),
    WatchedFeature("probability", output=True),
)
# studies arrive by the tens or hundreds a day, not by the thousand: a month's window
WINDOW = WindowConfig(max_count=1000, max_age_s=30 * 86_400.0, min_count=200)


@lru_cache(maxsize=4)
def _projection(channels: int) -> np.ndarray:
    """A fixed Gaussian random projection ``[channels, EMBEDDING_DIMS]`` (Johnson-Lindenstrauss:
    distances between pooled feature vectors are kept up to a small factor)."""
    rng = np.random.default_rng(PROJECTION_SEED + channels)
    return rng.standard_normal((channels, EMBEDDING_DIMS)) / np.sqrt(EMBEDDING_DIMS)


def image_summaries(images: np.ndarray, penultimate: np.ndarray | None) -> list[dict[str, Any]]:
    """Per image, what monitoring reads: intensity mean, std and 5/50/95 % percentiles of the
    model input ``images`` ``[N, 1, S, S]`` (in [0, 1]) and, when the penultimate features
    ``[N, C]`` are given, their projection (``embedding``, 16 floats). The request path calls
    it for one study, the reference for the shipped data: the same numbers for the same image."""
    flat = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
    percentiles = np.percentile(flat, [5, 50, 95], axis=1)
    stats = np.stack([flat.mean(axis=1), flat.std(axis=1), *percentiles], axis=1)
    embedding = None
    if penultimate is not None:
        features = np.asarray(penultimate, dtype=np.float64).reshape(len(images), -1)
        embedding = np.round(features @ _projection(features.shape[1]), DECIMALS)
    out = []
    for i, row in enumerate(np.round(stats, DECIMALS)):
        summary: dict[str, Any] = dict(zip(INTENSITY, map(float, row), strict=True))
        if embedding is not None:
            summary[EMBEDDING] = embedding[i].tolist()
        out.append(summary)
    return out


def reference_columns(task: str, classifier: model_api.ClassifierLike | None) -> Columns:
    """``classifier`` (the production one of ``task``) over the shipped data, summarised as
    served. It comes loaded: core builds the reference inside a transaction, where loading a
    model (a registry read) would wait on that transaction's own lock under SQLite."""
    from verticals.domains.medical.model.data import default_data_file, load_npz_split
    from verticals.domains.medical.model.preprocess import preprocess_batch

    inspect = getattr(classifier, "inspect", None)
    if classifier is None or inspect is None:
        raise ModelUnavailable(f"medical/{task} is not loaded: no reference can be built")
    path = default_data_file(model_api.tasks()[task])
    images = np.concatenate([load_npz_split(path, split).images for split in ("train", "val")])
    if len(images) > REFERENCE_IMAGES:
        pick = np.random.default_rng(REFERENCE_SEED).choice(len(images), REFERENCE_IMAGES, False)
        images = images[np.sort(pick)]
    x = preprocess_batch(images, int(getattr(classifier, "input_size", None) or images.shape[-1]))
    scores, penultimate = inspect(x)
    probability = np.clip(np.asarray(classifier.predict(x), dtype=np.float64), 0.0, 1.0)
    ood = np.full(len(x), np.nan) if scores is None else np.round(scores, 4)  # as stored
    return {
        **summary_columns(image_summaries(x, penultimate)),
        "ood_score": ood,
        "probability": probability,
    }


def summary_columns(summaries: Sequence[Mapping[str, Any] | None]) -> dict[str, np.ndarray]:
    """Columns of stored summaries (a missing embedding is a row of NaN: left out by drift)."""
    rows = [s or {} for s in summaries]
    columns = {
        name: np.array([r.get(name, np.nan) for r in rows], dtype=np.float64) for name in INTENSITY
    }
    missing = [np.nan] * EMBEDDING_DIMS
    columns[EMBEDDING] = np.array(
        [r.get(EMBEDDING) or missing for r in rows], dtype=np.float64
    ).reshape(len(rows), EMBEDDING_DIMS)
    return columns


def _newest(query: Select, task: str, config: WindowConfig) -> Select:
    query = query.where(StudyRow.task == task).order_by(StudyRow.created_at.desc())
    if config.max_age_s is not None:
        query = query.where(StudyRow.created_at >= utcnow() - timedelta(seconds=config.max_age_s))
    return query.limit(config.max_count)


def current_window(session: Session, config: WindowConfig, task: str) -> Window:
    """The newest studies of ``task`` that carry a summary (studies stored before medical_0004
    have none), oldest first."""
    query = select(
        StudyRow.image_summary, StudyRow.ood_score, StudyRow.probability, StudyRow.created_at
    ).where(StudyRow.image_summary.is_not(None))
    rows = list(session.execute(_newest(query, task, config)).all())[::-1]
    if not rows:
        return Window(columns={}, count=0)
    columns = summary_columns([r[0] for r in rows])
    columns["ood_score"] = np.array(
        [np.nan if r[1] is None else r[1] for r in rows], dtype=np.float64
    )
    columns["probability"] = np.array([r[2] for r in rows], dtype=np.float64)
    return Window(columns=columns, count=len(rows), start=rows[0][3], end=rows[-1][3])


def labelled_window(session: Session, config: WindowConfig, task: str) -> Labelled:
    """The window's studies (with or without a summary) and, for the reviewed ones, the
    accepted label of the study's labeling-queue item (the clinicians' majority, ties to the
    newest review) as 0/1 (positive: the task's positive label)."""
    query = select(StudyRow.id, StudyRow.probability, StudyRow.positive_label)
    studies = list(session.execute(_newest(query, task, config)).all())[::-1]
    latest: dict[str, str] = {}
    ids = [s[0] for s in studies]
    for chunk in range(0, len(ids), 500):
        reviews = session.execute(
            select(LabelItemRow.subject, LabelItemRow.label).where(
                LabelItemRow.domain == "medical",
                LabelItemRow.model == task,
                LabelItemRow.label.is_not(None),
                LabelItemRow.subject.in_(ids[chunk : chunk + 500]),
            )
        )
        latest.update({study_id: label for study_id, label in reviews})
    scores = np.array([s[1] for s in studies], dtype=np.float64)
    reviewed = [(s[1], latest[s[0]] == s[2]) for s in studies if s[0] in latest]
    return Labelled(
        scores=np.array([r[0] for r in reviewed], dtype=np.float64),
        labels=np.array([r[1] for r in reviewed], dtype=bool),
        all_scores=scores,
    )


def watched_task(task: str, classifier: model_api.ClassifierLike | None = None) -> WatchedModel:
    """``task``'s model; its OOD score is left out when the loaded version has no OOD profile
    (it stores none)."""
    unprofiled = classifier is not None and getattr(classifier, "ood", True) is None
    return WatchedModel(
        model=task,
        features=tuple(f for f in FEATURES if not (unprofiled and f.name == "ood_score")),
        current=lambda session, config: current_window(session, config, task),
        reference=lambda: reference_columns(task, classifier),
        window=WINDOW,
        labels=lambda session, config: labelled_window(session, config, task),
    )


def watch_spec(classifiers: Mapping[str, model_api.ClassifierLike]) -> WatchSpec:
    """Every task; ``classifiers``: the loaded production classifier of each task that has
    one (only needed the first time a version is watched, to build its reference)."""
    return WatchSpec(
        models=tuple(watched_task(task, classifiers.get(task)) for task in model_api.tasks())
    )
