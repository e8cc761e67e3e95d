"""The medical learner for ``verticals label simulate medical --task T`` (core/labeling/simulate).

Pool: the task's MedMNIST *train* split (labels hidden until asked). Evaluation: the *val* split
of ``--eval-data`` (default: the same file); a test split is never read.

Model: L2-regularised logistic regression on frozen random convolutional features. A CNN
retrained 36+ times would not fit in minutes on two cores, and the shipped model's embeddings
were trained on every training label, which would leak the answers into the simulation; random
filters have seen no label (nor any image: they are drawn from a fixed seed), so each budget's
model learns only from the labels it was given. Features: 64 zero-mean 5x5 filters on the
per-image standardised picture, both half-waves of the response (ReLU of x and of -x), averaged
over a 4x4 grid: 2,048 numbers per image, standardised with the pool's statistics (no labels).
Embeddings for diversity: the first 32 principal components of those features over the pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from verticals.core.errors import InvalidInput
from verticals.core.labeling.strategies import Costs

N_FILTERS = 64
KERNEL = 5
GRID = 4
FEATURE_SEED = 20261203
EMBED_DIMS = 32
C = 0.05  # fixed for every budget (a per-budget search would need labels the learner lacks)


def random_conv_features(images: np.ndarray, batch: int = 1024) -> np.ndarray:
    """float32 ``[N, 1, H, W]`` in [0, 1] → float64 ``[N, 2 * N_FILTERS * GRID**2]``."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(FEATURE_SEED)
    w = torch.randn(N_FILTERS, 1, KERNEL, KERNEL, generator=g)
    w -= w.mean(dim=(2, 3), keepdim=True)
    w /= w.flatten(1).norm(dim=1)[:, None, None, None]
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    x = (x - x.mean(dim=(2, 3), keepdim=True)) / (x.std(dim=(2, 3), keepdim=True) + 1e-6)
    out = []
    with torch.no_grad():
        for start in range(0, len(x), batch):
            h = F.conv2d(x[start : start + batch], w)
            h = torch.cat([h.relu(), (-h).relu()], dim=1)
            out.append(F.adaptive_avg_pool2d(h, GRID).flatten(1))
    return torch.cat(out).numpy().astype(np.float64)


@dataclass
class MedicalLearner:
    task: str
    pool_x: np.ndarray  # standardised features (n, f)
    pool_y: np.ndarray  # 0/1 (positive = the task's positive label)
    eval_x: np.ndarray
    eval_y: np.ndarray
    sources: str
    metric: str = "roc_auc"
    _embedding: np.ndarray | None = None

    @property
    def n_pool(self) -> int:
        return len(self.pool_y)

    def fit(self, indices: np.ndarray, labels: np.ndarray, seed: int) -> Any:
        from sklearn.linear_model import LogisticRegression

        labels = np.asarray(labels)
        if len(np.unique(labels)) < 2:  # one class seen: predict its base rate
            return float(labels.mean())
        model = LogisticRegression(C=C, max_iter=2000, random_state=seed)
        return model.fit(self.pool_x[indices], labels)

    def _proba(self, model: Any, x: np.ndarray) -> np.ndarray:
        if isinstance(model, float):
            return np.full(len(x), model)
        return model.predict_proba(x)[:, 1]

    def predict_proba(self, model: Any, indices: np.ndarray) -> np.ndarray:
        return self._proba(model, self.pool_x[indices])

    def embed(self, indices: np.ndarray) -> np.ndarray:
        if self._embedding is None:
            _, _, vt = np.linalg.svd(self.pool_x, full_matrices=False)
            self._embedding = self.pool_x @ vt[:EMBED_DIMS].T
        return self._embedding[indices]

    def score(self, model: Any) -> dict[str, float]:
        from sklearn.metrics import average_precision_score, roc_auc_score

        p = self._proba(model, self.eval_x)
        return {
            "roc_auc": float(roc_auc_score(self.eval_y, p)),
            "average_precision": float(average_precision_score(self.eval_y, p)),
        }

    def oracle(self, indices: np.ndarray) -> np.ndarray:
        return self.pool_y[indices]

    def costs(self) -> Costs | None:
        return None

    def describe(self) -> str:
        return (
            f"medical/{self.task}: pool {self.n_pool} images ({int(self.pool_y.sum())} "
            f"positive), evaluation {len(self.eval_y)} ({self.sources}); logistic regression "
            f"(C={C}) on frozen random-convolution features ({self.pool_x.shape[1]}), metric "
            f"{self.metric}"
        )


def simulation_learner(
    task: str | None, data: Path | None, eval_data: Path | None
) -> MedicalLearner:
    """The learner for ``task`` (default pneumonia): pool = ``data``'s train split (default
    the shared MedMNIST file), evaluation = ``eval_data``'s val split (default: ``data``)."""
    from verticals.domains.medical.model.data import default_data_file, load_npz_split
    from verticals.domains.medical.model.tasks import get_task

    spec = get_task(task or "pneumonia")
    pool_file = data or default_data_file(spec)
    eval_file = eval_data or pool_file
    pool = load_npz_split(pool_file, "train")
    held = load_npz_split(eval_file, "val")
    if len(np.unique(held.labels)) < 2:
        raise InvalidInput(f"the evaluation split of {eval_file} holds one class only")
    pool_f = random_conv_features(pool.images)
    eval_f = random_conv_features(held.images)
    mean, sd = pool_f.mean(axis=0), pool_f.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    positive = spec.positive_index
    return MedicalLearner(
        task=spec.name,
        pool_x=(pool_f - mean) / sd,
        pool_y=(pool.labels == positive).astype(np.int64),
        eval_x=(eval_f - mean) / sd,
        eval_y=(held.labels == positive).astype(np.int64),
        sources=f"pool: {pool_file.name} train split, evaluation: {eval_file.name} val split",
    )
