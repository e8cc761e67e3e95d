"""The one seam to ``verticals.domains.medical.model`` (imported lazily: torch is heavy).

Everything else in the domain calls these functions, so tests replace them with fakes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np


class ClassifierLike(Protocol):
    """What serving needs of a loaded model (``model.Classifier`` satisfies it)."""

    version: str
    task: str

    def predict(self, images: np.ndarray) -> np.ndarray:
        """float32 ``[N, 1, H, W]`` in [0, 1] → ``[N]`` positive-class probabilities."""

    def gradcam(self, image: np.ndarray) -> np.ndarray:
        """``[1, H, W]`` → ``[H, W]`` in [0, 1]."""


def tasks() -> Mapping[str, Any]:
    from verticals.domains.medical.model import TASKS

    return TASKS


def ensure_production_models() -> dict[str, str]:
    from verticals.domains.medical.model import ensure_production_models as ensure

    return ensure()


def load_classifier(task: str) -> ClassifierLike:
    from verticals.domains.medical.model import load_classifier as load

    return load(task)


def train_task(task: str, data: Path | None, nproc: int, seed: int, **options: Any) -> Any:
    from verticals.domains.medical.model import train_task as train

    return train(task, data, nproc, seed, **options)


def ship_task(task: str, seed: int, version: str, **options: Any) -> dict[str, float]:
    """Cross-validate, train and write ``task`` into ``shared_models/medical``; card metrics."""
    from verticals.domains.medical.model.ship import ship

    return dict(ship(task, seed, version, **options).card.metrics)


def evaluate_task(task: str, data_file: Path, split: str) -> dict[str, float]:
    from verticals.domains.medical.model import evaluate_task as evaluate

    return evaluate(task, data_file, split)
