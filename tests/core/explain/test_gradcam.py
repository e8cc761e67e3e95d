from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from verticals.core.explain import grad_cam, last_conv_layer, scale_to_peak


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


def _evidence_net(sign: float) -> nn.Module:
    """Score = ``sign`` × mean of the image, through a 1×1 identity convolution ("0")."""
    conv = nn.Conv2d(1, 1, 1, bias=False)
    head = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        head.weight.fill_(sign)
    return nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)


def test_grad_cam_is_hot_where_the_evidence_is():
    # the score grows with the bright patch only: the map must peak there and be cold elsewhere
    # (MONAI's default post-processing flips this: 1 at the minimum, 0 at the maximum)
    image = torch.zeros(1, 16, 16)
    image[:, 4:8, 3:6] = 1.0
    cam = grad_cam(_evidence_net(1.0), image, target_layer="0")
    assert cam[4:8, 3:6].min() == pytest.approx(1.0)
    assert cam[12:, 10:].max() == pytest.approx(0.0, abs=1e-6)
    assert cam.mean() < 0.2


def test_grad_cam_without_positive_evidence_is_empty():
    # the patch lowers the score: nothing argues for the class, so nothing may light up
    image = torch.zeros(1, 16, 16)
    image[:, 4:8, 3:6] = 1.0
    cam = grad_cam(_evidence_net(-1.0), image, target_layer="0")
    assert cam.shape == (16, 16) and not cam.any()


def test_scale_to_peak_keeps_proportions_and_zero():
    np.testing.assert_allclose(scale_to_peak(np.array([0.0, 1.0, 2.0, 4.0])), [0, 0.25, 0.5, 1])
    # a map high everywhere stays high everywhere: no min-max stretch into false contrast
    np.testing.assert_allclose(scale_to_peak(np.array([3.0, 3.0, 4.0])), [0.75, 0.75, 1.0])
    np.testing.assert_allclose(scale_to_peak(np.array([-1.0, np.nan, np.inf, 2.0])), [0, 0, 0, 1])
    assert not scale_to_peak(np.zeros((3, 3))).any()
    assert scale_to_peak(np.ones((2, 2))).dtype == np.float32


def _hook_counts(model: nn.Module) -> list[tuple[int, int, int, int]]:
    return [
        (
            len(m._forward_hooks),
            len(m._forward_pre_hooks),
            len(m._backward_hooks),
            len(m._backward_pre_hooks),
        )
        for m in model.modules()
    ]


def test_grad_cam_leaves_no_hooks_on_the_model():
    # MONAI's GradCAM registers a forward and a backward hook on the target layer and keeps no
    # handle: without removal every call adds two more (memory and latency grow per request)
    net = _net()
    kept: list[int] = []
    net[2].register_forward_hook(lambda *_: kept.append(1))  # the caller's own hook stays
    before = _hook_counts(net)
    image = torch.rand(1, 16, 12, generator=torch.Generator().manual_seed(1))
    first = grad_cam(net, image)
    for _ in range(5):
        again = grad_cam(net, image)
        assert _hook_counts(net) == before
        np.testing.assert_array_equal(again, first)  # results unchanged call after call
    assert len(kept) == 6  # the caller's hook fired once per call, and only once
    net(image[None])
    assert len(kept) == 7


def test_grad_cam_removes_its_hooks_when_it_fails():
    net = _net()
    before = _hook_counts(net)
    with pytest.raises(IndexError):  # the forward ran (hooks fired), the class score fails
        grad_cam(net, torch.rand(1, 8, 8), class_index=5)
    assert _hook_counts(net) == before


def test_grad_cam_equals_monais_raw_map_scaled_to_its_peak():
    from monai.networks.nets import ResNet
    from monai.visualize import GradCAM

    torch.manual_seed(3)
    model = ResNet("basic", [1, 1, 1, 1], [8, 16, 32, 64], spatial_dims=2, n_input_channels=1,
                   conv1_t_size=3, conv1_t_stride=1, no_max_pool=True, num_classes=1).eval()
    image = torch.rand(1, 1, 28, 28)
    for layer in ("layer2", "layer3"):
        raw = GradCAM(nn_module=model, target_layers=layer, postprocessing=lambda m: m)(
            image, class_idx=0
        )
        expected = scale_to_peak(raw.detach().numpy()[0, 0])
        np.testing.assert_allclose(grad_cam(model, image[0], target_layer=layer), expected,
                                   atol=1e-5)


def test_grad_cam_retains_no_memory_across_calls():
    import gc
    import tracemalloc

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 1)).eval()
    image = torch.rand(1, 28, 28)
    for _ in range(20):  # warm up allocator caches
        grad_cam(model, image)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(300):
        grad_cam(model, image)
    gc.collect()
    grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    tracemalloc.stop()
    assert grown < 100_000, f"{grown} bytes retained after 300 calls"
