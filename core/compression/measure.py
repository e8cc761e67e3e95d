"""Measuring a variant: bytes on disk, latency at a batch size, the target's metric."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from verticals.core.compression.target import PredictFn

if TYPE_CHECKING:
    import torch
    from verticals.core.serving.runtime import OrtModel


def file_bytes(path: Path) -> int:
    return Path(path).stat().st_size


def latency_ms(
    predict: Callable[[np.ndarray], object],
    x: np.ndarray,
    *,
    warmup: int = 3,
    min_runs: int = 5,
    max_runs: int = 200,
    budget_s: float = 3.0,
) -> float:
    """Median wall time of ``predict(x)`` in milliseconds, after ``warmup`` calls; runs until
    ``budget_s`` is spent (at least ``min_runs``, at most ``max_runs``)."""
    for _ in range(warmup):
        predict(x)
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < max_runs and (
        len(times) < min_runs or time.perf_counter() - started < budget_s
    ):
        t0 = time.perf_counter()
        predict(x)
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


def batch_of(example: np.ndarray, batch_size: int, seed: int = 0) -> np.ndarray:
    """A random float32 batch shaped like ``example`` ([1, ...]) with ``batch_size`` rows."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch_size, *example.shape[1:])).astype(np.float32)


def torch_predict(module: torch.nn.Module, device: str = "cpu") -> PredictFn:
    """A PredictFn over a torch module (eval, no grad)."""
    import torch

    module = module.eval().to(device)

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device))
        out = out[0] if isinstance(out, (tuple, list)) else out
        return out.float().cpu().numpy()

    return predict


def ort_predict(model: OrtModel) -> PredictFn:
    """A PredictFn over an :class:`~verticals.core.serving.runtime.OrtModel`."""

    def predict(x: np.ndarray) -> np.ndarray:
        return np.asarray(model.run(np.ascontiguousarray(x, dtype=np.float32)), dtype=np.float32)

    return predict
