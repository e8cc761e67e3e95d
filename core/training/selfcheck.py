"""A tiny synthetic training job: proves the trainer (and DDP through torchrun) end to end.

``train_synthetic`` is an importable target for :func:`launch_function`; it needs no data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset
from verticals.core.training.config import TrainConfig, TrainResult
from verticals.core.training.trainer import Trainer


def synthetic_data(n: int, seed: int, dim: int = 8) -> TensorDataset:
    """Two overlapping Gaussian classes in ``dim`` dimensions (Bayes accuracy about 0.92)."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=generator)
    x = torch.randn(n, dim, generator=generator) + (y[:, None].float() * 2 - 1) * 0.5
    return TensorDataset(x, y.float()[:, None])


def _accuracy(outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    return {"val_accuracy": float(np.mean((outputs > 0) == (targets > 0.5)))}


def train_synthetic(
    seed: int = 0, epochs: int = 5, n: int = 2048, output_dir: str | None = None
) -> TrainResult:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
    config = TrainConfig(
        epochs=epochs, batch_size=64, lr=1e-2, monitor="val_accuracy", mode="max", seed=seed,
        progress=False, num_threads=1,
    )
    trainer = Trainer(
        model, synthetic_data(n, seed), synthetic_data(n // 4, seed + 1), nn.BCEWithLogitsLoss(),
        config, metrics_fn=_accuracy, output_dir=Path(output_dir) if output_dir else None,
    )
    return trainer.fit()
