"""The hook a domain implements to make one of its models compressible.

A domain returns a :class:`CompressionTarget` for ``(model_name, data_file, split)``; the core
builds and measures every variant from it without knowing anything about the domain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from verticals.core.registry.gate import MetricGate

if TYPE_CHECKING:
    import torch

PredictFn = Callable[[np.ndarray], np.ndarray]
"""float32 model input ``[N, ...]`` → the model's first output ``[N, ...]`` (raw, e.g. logits)."""

MetricFn = Callable[[PredictFn], tuple[float, str]]
"""Runs ``predict`` over the validation split; returns ``(value, name)``, e.g. ``(0.97, "auc")``."""

FineTuneFn = Callable[["torch.nn.Module", int], None]
"""Trains the module in place for ``steps`` optimiser steps on training data (after pruning)."""


@dataclass
class CompressionTarget(MetricGate):
    """Everything compression needs from a domain, and nothing domain-specific.

    Attributes:
        name: ``"<domain>/<model>"``.
        module: the fp32 torch model (put in eval mode by the core; not modified — pruning
            works on a copy).
        example_input: one input batch ``[1, ...]`` (float32) for export and numerics checks.
        calibration: a zero-argument callable yielding float32 input batches ``[n, ...]`` drawn
            from the *training* split (static INT8 calibration; ~100–500 samples are plenty).
        metric: ``metric(predict) -> (value, name)`` on the validation split.
        fine_tune: ``fine_tune(module, steps)``; None disables pruning (it cannot recover).
        version: the registry version of ``module`` (variants are stored with it), if any.
        higher_is_better: direction of ``metric`` (AUC: True; loss/RMSE: False).
        fine_tune_steps: steps given to ``fine_tune`` after each pruning.
        max_metric_drop: tolerance stored with each variant; promotion is refused beyond it.
    """

    name: str
    module: torch.nn.Module
    example_input: torch.Tensor
    calibration: Callable[[], Iterable[np.ndarray]]
    metric: MetricFn
    fine_tune: FineTuneFn | None = None
    version: str | None = None
    higher_is_better: bool = True
    fine_tune_steps: int = 200
    max_metric_drop: float = 0.02

    def __post_init__(self) -> None:
        self._check_gate()
        if self.example_input.ndim < 1 or self.example_input.shape[0] != 1:
            raise ValueError("example_input must be one batch of size 1: [1, ...]")
        if self.fine_tune_steps < 0:
            raise ValueError("fine_tune_steps must be >= 0")
