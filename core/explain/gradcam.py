"""Grad-CAM heatmaps for image classifiers (Selvaraju et al. 2017).

The map is ``ReLU(Σ_k w_k A_k)``, where ``A_k`` are the target layer's activations and ``w_k``
the spatial mean of the class score's gradient with respect to them, bilinearly upsampled to the
input size — the computation of MONAI's ``monai.visualize.GradCAM``, which this module used until
a measurement showed two things in its way: it registers a forward and a full backward hook on
the target layer and keeps no handle to remove them (two more per call; after removing them by
hand the backward hooks still left ~3.6 KB per call that the garbage collector could not free),
and its default normaliser flips magnitudes (Project-MONAI/tutorials#1796). Here one forward hook,
removed by its handle, captures the activations, and ``torch.autograd.grad`` takes the gradient:
nothing stays on the model or in memory after a call. ``test_gradcam.py`` checks the map equals
MONAI's raw map.

Orientation and scale: the map is scaled per image by its peak — ``1`` where this image's
evidence for the class is strongest, ``0`` no positive evidence, values in between keep their
proportion. The minimum is not subtracted, so a map that is high everywhere is not stretched into
false contrast; a map with no positive evidence anywhere stays all zeros.
"""

from __future__ import annotations

import threading

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PEAK_EPS = 1e-12


def last_conv_layer(model: nn.Module) -> str:
    """Name of the last ``Conv2d``/``Conv3d`` submodule: the usual Grad-CAM target layer."""
    name = None
    for layer_name, module in model.named_modules():
        if isinstance(module, nn.Conv2d | nn.Conv3d):
            name = layer_name
    if name is None:
        raise ValueError("model has no convolution layer to take Grad-CAM from")
    return name


def scale_to_peak(cam: np.ndarray) -> np.ndarray:
    """``cam / cam.max()`` as float32 in [0, 1]; all zeros when the map has no positive value.

    Non-finite values count as 0; negatives are clipped to 0.
    """
    out = np.asarray(cam, dtype=np.float64)
    out = np.clip(np.where(np.isfinite(out), out, 0.0), 0.0, None)
    peak = float(out.max()) if out.size else 0.0
    if peak <= PEAK_EPS:
        return np.zeros(out.shape, dtype=np.float32)
    return np.clip(out / peak, 0.0, 1.0).astype(np.float32)


def grad_cam(
    model: nn.Module,
    image: torch.Tensor,
    *,
    target_layer: str | None = None,
    class_index: int = 0,
) -> np.ndarray:
    """Grad-CAM of ``class_index`` for one image.

    ``image``: ``[C, H, W]`` (or ``[1, C, H, W]``), already preprocessed as ``model`` expects.
    Returns a float32 ``[H, W]`` map in [0, 1], scaled to this image's peak (see the module
    docstring); all zeros when no location has positive evidence for the class.
    The model is put in eval mode for the call; its parameters and hooks are left as they were.
    Safe to call from several threads on one model.
    """
    if image.dim() == 3:
        image = image.unsqueeze(0)
    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(f"image must be [C,H,W] or [1,C,H,W], got {tuple(image.shape)}")
    layer = target_layer or last_conv_layer(model)
    modules = dict(model.named_modules())
    if layer not in modules:
        raise ValueError(f"target_layer {layer!r} is not a submodule of the model")
    captured: list[torch.Tensor] = []
    caller = threading.get_ident()

    def capture(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        if threading.get_ident() == caller:  # not another thread's pass through the same model
            captured.append(output)

    handle = modules[layer].register_forward_hook(capture)
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        x = image.to(device).float()
        with torch.enable_grad():
            logits = model(x)
            activations = captured[0]
            score = logits.reshape(logits.shape[0], -1)[:, class_index].sum()
            (gradients,) = torch.autograd.grad(score, activations)
        weights = gradients.flatten(2).mean(dim=2)[:, :, None, None]
        cam = F.relu((weights * activations).sum(dim=1, keepdim=True)).detach()
        cam = F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)
    finally:
        handle.remove()
        model.train(was_training)
    return scale_to_peak(cam.float().cpu().numpy()[0, 0])
