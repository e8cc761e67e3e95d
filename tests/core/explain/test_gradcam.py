from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from verticals.core.explain import grad_cam, last_conv_layer


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),
        nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 1),
    )


def test_last_conv_layer():
    assert last_conv_layer(_net()) == "2"
    with pytest.raises(ValueError):
        last_conv_layer(nn.Linear(2, 2))


def test_grad_cam_is_a_normalised_map_of_the_input_size():
    net = _net()
    image = torch.zeros(1, 16, 12)
    image[:, 4:8, 3:6] = 1.0
    cam = grad_cam(net, image)
    assert cam.shape == (16, 12) and cam.dtype == np.float32
    assert cam.min() >= 0.0 and cam.max() <= 1.0
    assert net.training  # mode restored
    same = grad_cam(net, image[None], target_layer="2")
    np.testing.assert_allclose(cam, same, atol=1e-6)


def test_grad_cam_rejects_bad_arguments():
    with pytest.raises(ValueError):
        grad_cam(_net(), torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError):
        grad_cam(_net(), torch.zeros(1, 8, 8), target_layer="nope")
