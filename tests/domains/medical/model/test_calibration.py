from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from verticals.domains.medical.model.calibration import (
    Platt,
    expected_calibration_error,
    fit_platt,
    fold_into_head,
    nll,
)
from verticals.domains.medical.model.networks import NetworkSpec, ProbabilityNet, build_network


def _labelled(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """True logits and labels drawn from them: ``sigmoid(z)`` is the calibrated probability."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.3, 1.5, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.int64)
    return z, y


def test_temperature_reduces_nll_of_an_overconfident_model():
    z, y = _labelled()
    overconfident = 3.0 * z  # a network whose logits are three times too large
    platt = fit_platt(overconfident, y, bias=False)
    assert platt.bias == 0.0 and platt.temperature == pytest.approx(3.0, rel=0.1)
    assert nll(overconfident, y, platt) < nll(overconfident, y) - 0.05
    assert nll(overconfident, y, platt) == pytest.approx(nll(z, y), abs=0.01)
    assert expected_calibration_error(platt.probabilities(overconfident), y) < 0.03
    assert expected_calibration_error(1 / (1 + np.exp(-overconfident)), y) > 0.05


def test_platt_recovers_scale_and_bias_of_a_shifted_model():
    z, y = _labelled(seed=1)
    shifted = (z - 1.0) / 0.5  # e.g. a class-weighted network: off-prior and too sharp
    platt = fit_platt(shifted, y)
    assert platt.scale == pytest.approx(0.5, rel=0.1)
    assert platt.bias == pytest.approx(1.0, abs=0.15)
    assert nll(shifted, y, platt) < nll(shifted, y, fit_platt(shifted, y, bias=False))


def test_fit_platt_refuses_bad_input_and_stays_bounded():
    with pytest.raises(ValueError, match="equal in length"):
        fit_platt(np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="finite"):
        fit_platt(np.array([0.0, np.inf]), np.array([0, 1]))
    separable = fit_platt(np.array([-1.0, -0.5, 0.5, 1.0]), np.array([0, 0, 1, 1]))
    assert 0 < separable.scale <= 100 and np.isfinite(separable.bias)


def test_folding_into_the_head_calibrates_the_served_network():
    torch.manual_seed(0)
    net = build_network(NetworkSpec()).eval()
    x = torch.rand(6, 1, 28, 28)
    with torch.no_grad():
        before = net(x).reshape(-1).double().numpy()
    platt = Platt(scale=0.4, bias=-0.7)
    fold_into_head(net, platt)
    with torch.no_grad():
        after = net(x).reshape(-1).double().numpy()
        served = ProbabilityNet(net)(x).reshape(-1).double().numpy()
    np.testing.assert_allclose(after, platt.logits(before), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(served, platt.probabilities(before), atol=1e-6)
    with pytest.raises(ValueError, match="Linear"):
        fold_into_head(nn.Sequential(nn.Conv2d(1, 1, 1)), platt, head="0")
