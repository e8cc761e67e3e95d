"""What a domain declares for core's monitoring: its watched models, features and windows.

A domain returns a :class:`WatchSpec` from :meth:`Domain.monitoring`. For each model it names the
features (inputs and outputs, with their kind), where the reference data comes from (a callable
returning columns, read once per model version to build the registered reference profile) and
how to read the current window from rows it already stores (so nothing is added to the
request path: the window is read by the evaluator, in the background).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np
from sqlalchemy.orm import Session

FeatureKind = Literal["numeric", "categorical", "embedding"]
Columns = Mapping[str, np.ndarray]  # feature name -> values (1-D), or rows x dims (embedding)


@dataclass(frozen=True)
class WatchedFeature:
    name: str
    kind: FeatureKind = "numeric"
    output: bool = False  # the model's output (e.g. a probability) rather than an input


@dataclass(frozen=True)
class WindowConfig:
    """The current window: the newest ``max_count`` records no older than ``max_age_s``
    (None: any age); below ``min_count`` records drift is not judged (too noisy)."""

    max_count: int = 1000
    max_age_s: float | None = 7 * 86_400.0
    min_count: int = 200


@dataclass(frozen=True)
class Window:
    """What a domain's window reader returns: columns of the watched features, newest last."""

    columns: dict[str, np.ndarray]
    count: int
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class Labelled:
    """Predictions of the window that carry a label (for performance from feedback), plus the
    scores of all of them (for the confidence-based estimate when labels lag)."""

    scores: np.ndarray  # predicted probability of the positive class, labelled rows
    labels: np.ndarray  # 0/1, same order
    all_scores: np.ndarray  # every prediction of the window


WindowReader = Callable[[Session, WindowConfig], Window]
ReferenceSource = Callable[[], Columns]
LabelReader = Callable[[Session, WindowConfig], Labelled]


@dataclass(frozen=True)
class WatchedModel:
    """One served model: ``model`` is its registry name (the reference profile is registered
    as the ``reference`` derived artifact of its production version)."""

    model: str
    features: tuple[WatchedFeature, ...]
    current: WindowReader
    reference: ReferenceSource
    window: WindowConfig = field(default_factory=WindowConfig)
    labels: LabelReader | None = None
    thresholds: Mapping[str, float] = field(default_factory=dict)  # statistic -> threshold
    # metrics of the registered version (e.g. "average_precision") that the window's labelled
    # predictions are held to by the performance-drop rule
    baseline: tuple[str, ...] = ()

    def feature(self, name: str) -> WatchedFeature:
        for feature in self.features:
            if feature.name == name:
                return feature
        raise KeyError(name)


@dataclass(frozen=True)
class WatchSpec:
    models: tuple[WatchedModel, ...]

    def get(self, model: str) -> WatchedModel:
        from verticals.core.errors import NotFound

        for watched in self.models:
            if watched.model == model:
                return watched
        raise NotFound(
            f"model {model!r} is not watched", {"watched": [m.model for m in self.models]}
        )
