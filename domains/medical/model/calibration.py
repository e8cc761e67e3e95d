"""Probability calibration: Platt scaling fitted on out-of-fold logits, folded into the network.

A trained network's sigmoid is rarely a calibrated probability (label smoothing pulls it
towards 0.5, class-balanced weighting moves it off the training prior, long training makes it
over-confident). Platt scaling maps a logit ``z`` to ``sigmoid(scale * z + bias)``, with
``scale`` and ``bias`` chosen to minimise the negative log-likelihood (NLL) of held-out
labels; ``bias = 0`` is temperature scaling (``temperature = 1 / scale``).

:func:`fold_into_head` writes the map into the network's final linear layer
(``w ← scale·w``, ``b ← scale·b + bias``), so the served artifact stays one safetensors file
that ``build_network(NetworkSpec)`` rebuilds, ``ProbabilityNet`` / ONNX export output the
calibrated probability, and Grad-CAM is unchanged (``scale > 0`` keeps the gradient's sign;
the map is normalised). The decision threshold is chosen afterwards on the calibrated scale.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import BaseModel, Field
from scipy.optimize import minimize
from torch import nn

MIN_SCALE, MAX_SCALE = 1e-2, 1e2
MAX_BIAS = 20.0


class Platt(BaseModel):
    """``p = sigmoid(scale * logit + bias)``; the identity map is ``Platt()``."""

    scale: float = Field(1.0, gt=0)
    bias: float = 0.0

    @property
    def temperature(self) -> float:
        return 1.0 / self.scale

    def logits(self, logits: np.ndarray) -> np.ndarray:
        return self.scale * np.asarray(logits, dtype=np.float64) + self.bias

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return _sigmoid(self.logits(logits))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free


def nll(logits: np.ndarray, targets: np.ndarray, platt: Platt | None = None) -> float:
    """Mean binary negative log-likelihood of ``targets`` (0/1) under ``platt`` (or none)."""
    z = (platt or Platt()).logits(np.asarray(logits).reshape(-1))
    y = np.asarray(targets, dtype=np.float64).reshape(-1)
    return float(np.mean(np.logaddexp(0.0, z) - y * z))  # = -y log p - (1-y) log(1-p)


def expected_calibration_error(
    probabilities: np.ndarray, targets: np.ndarray, bins: int = 10
) -> float:
    """ECE over ``bins`` equal-width probability bins (mean |observed - predicted|, weighted)."""
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    y = np.asarray(targets, dtype=np.float64).reshape(-1)
    index = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.sum() * abs(y[mask].mean() - p[mask].mean())
    return float(total / max(1, len(p)))


def fit_platt(logits: np.ndarray, targets: np.ndarray, *, bias: bool = True) -> Platt:
    """The NLL-minimising Platt map (``bias=False``: temperature scaling only).

    ``scale`` is bounded to [0.01, 100] and ``bias`` to ±20, so separable data cannot drive
    them to infinity.
    """
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    y = np.asarray(targets, dtype=np.float64).reshape(-1)
    if len(z) != len(y) or len(z) == 0:
        raise ValueError(f"logits and targets must be non-empty and equal in length, got "
                         f"{len(z)} and {len(y)}")
    if not np.isfinite(z).all():
        raise ValueError("logits must be finite")

    def objective(params: np.ndarray) -> tuple[float, np.ndarray]:
        scale, offset = params[0], params[1] if bias else 0.0
        u = scale * z + offset
        residual = _sigmoid(u) - y  # d NLL / d u
        loss = np.mean(np.logaddexp(0.0, u) - y * u)
        grad = [np.mean(residual * z), np.mean(residual)] if bias else [np.mean(residual * z)]
        return float(loss), np.asarray(grad)

    start = np.array([1.0, 0.0] if bias else [1.0])
    bounds = [(MIN_SCALE, MAX_SCALE)] + ([(-MAX_BIAS, MAX_BIAS)] if bias else [])
    found = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds)
    params = found.x
    return Platt(scale=float(params[0]), bias=float(params[1]) if bias else 0.0)


def fold_into_head(model: nn.Module, platt: Platt, head: str = "net.fc") -> nn.Module:
    """Write ``platt`` into the final ``nn.Linear`` ``head`` of ``model`` (in place); returns it.

    Afterwards ``model(x) == platt.logits(old_model(x))`` up to float32 rounding.
    """
    layer = model.get_submodule(head)
    if not isinstance(layer, nn.Linear) or layer.bias is None or layer.out_features != 1:
        raise ValueError(f"head {head!r} must be a Linear layer with one output and a bias")
    with torch.no_grad():
        layer.weight.mul_(platt.scale)
        layer.bias.mul_(platt.scale).add_(platt.bias)
    return model
