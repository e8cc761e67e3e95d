"""A tiny, quickly trained conv net with a real metric, as a domain would provide it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn
from verticals.core.compression.target import CompressionTarget

SIZE = 16


def make_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noise images; positives carry a bright 4x4 blob somewhere."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, size=(n, 1, SIZE, SIZE)).astype(np.float32)
    y = rng.integers(0, 2, n).astype(np.float32)
    for i in np.flatnonzero(y):
        r, c = rng.integers(0, SIZE - 4, 2)
        x[i, 0, r : r + 4, c : c + 4] += 2.0
    return x, y


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.head = nn.Linear(32, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.features(x)), 1))


def fine_tune(module: nn.Module, steps: int, seed: int = 0) -> None:
    x, y = make_data(512, seed=1)
    opt = torch.optim.Adam(module.parameters(), lr=3e-3)
    gen = np.random.default_rng(seed)
    module.train()
    for _ in range(steps):
        idx = gen.integers(0, len(x), 64)
        loss = nn.functional.binary_cross_entropy_with_logits(
            module(torch.from_numpy(x[idx]))[:, 0], torch.from_numpy(y[idx])
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    module.eval()


def auc_metric(predict) -> tuple[float, str]:
    x, y = make_data(256, seed=2)
    scores = np.concatenate([predict(x[i : i + 64]).reshape(-1) for i in range(0, len(x), 64)])
    return float(roc_auc_score(y, scores)), "auc"


@pytest.fixture(scope="session")
def tiny_target() -> CompressionTarget:
    torch.manual_seed(0)
    torch.set_num_threads(2)
    model = TinyNet()
    fine_tune(model, 60)

    def calibration():
        x, _ = make_data(128, seed=3)
        for i in range(0, len(x), 32):
            yield x[i : i + 32]

    return CompressionTarget(
        name="testdomain/tiny",
        module=model,
        example_input=torch.from_numpy(make_data(1, seed=4)[0]),
        calibration=calibration,
        metric=auc_metric,
        fine_tune=fine_tune,
        version="1",
        fine_tune_steps=30,
    )


@pytest.fixture(scope="session")
def report(tiny_target, tmp_path_factory):
    """The whole pipeline, run once for every test that reads its report."""
    from verticals.core.compression.pipeline import CompressionPlan, compress

    out = tmp_path_factory.mktemp("compressed")
    steps: list[str] = []
    plan = CompressionPlan(prune_amounts=(0.75,), latency_budget_s=0.05, fp16=True)
    result = compress(tiny_target, out, plan, step=steps.append)
    assert any("calibrating" in s for s in steps)
    return result
