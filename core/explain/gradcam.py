"""Grad-CAM heatmaps for image classifiers, through MONAI's ``monai.visualize.GradCAM``.

Orientation and scale. MONAI's default post-processing (``default_normalizer``) maps the map's
*minimum* to 1 and its maximum to 0: it flips magnitudes, by design (see its docstring and
Project-MONAI/tutorials#1796). Rendered with a colour map, that paints everything the model did
*not* use in the hottest colour. We therefore take MONAI's raw map (``ReLU(Σ_k w_k A_k)``,
bilinearly upsampled to the input size) and scale it ourselves, per image, by its peak:
``1`` is where this image's evidence for the class is strongest, ``0`` is no positive evidence,
and values in between keep their proportion to the peak. The minimum is not subtracted, so a
map that is high everywhere stays high everywhere instead of being stretched into false
contrast. A map with no positive evidence anywhere (all zeros after the ReLU) stays all zeros.

Hooks. MONAI's ``GradCAM`` registers a forward and a full backward hook on the target layer and
keeps no handle to remove them. Left in place they pile up, two per call, each holding its
activations and gradients (memory and latency grow with every request). ``grad_cam`` removes
exactly the hooks that MONAI added, whether the call succeeds or fails, so the model carries the
same hooks after a call as before it. Calls on one model are serialised (the hooks of one call
would otherwise see the passes of another).
"""

from __future__ import annotations

import threading
import weakref

import numpy as np
import torch
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


def _unchanged(cam: torch.Tensor) -> torch.Tensor:
    return cam


_model_locks: weakref.WeakKeyDictionary[nn.Module, threading.Lock] = weakref.WeakKeyDictionary()
_model_locks_guard = threading.Lock()


def _model_lock(model: nn.Module) -> threading.Lock:
    with _model_locks_guard:
        lock = _model_locks.get(model)
        if lock is None:
            lock = _model_locks[model] = threading.Lock()
        return lock


def _hook_ids(module: nn.Module) -> tuple[set[int], set[int]]:
    return set(module._forward_hooks), set(module._backward_hooks)


def _remove_hooks_since(module: nn.Module, before: tuple[set[int], set[int]]) -> None:
    """Remove the forward/backward hooks added to ``module`` since ``before`` (what
    ``RemovableHandle.remove`` does, for hooks whose handle MONAI discarded)."""
    forward, backward = _hook_ids(module)
    for key in forward - before[0]:
        module._forward_hooks.pop(key, None)
        module._forward_hooks_with_kwargs.pop(key, None)
        module._forward_hooks_always_called.pop(key, None)
    for key in backward - before[1]:
        module._backward_hooks.pop(key, None)


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
    The model is put in eval mode; its parameters are left untouched, and so are its hooks
    (those MONAI adds are removed before returning).
    """
    from monai.visualize import GradCAM

    if image.dim() == 3:
        image = image.unsqueeze(0)
    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(f"image must be [C,H,W] or [1,C,H,W], got {tuple(image.shape)}")
    layer = target_layer or last_conv_layer(model)
    modules = dict(model.named_modules())
    if layer not in modules:
        raise ValueError(f"target_layer {layer!r} is not a submodule of the model")
    target = modules[layer]
    with _model_lock(model):
        was_training = model.training
        hooks_before = _hook_ids(target)
        model.eval()
        try:
            device = next(model.parameters()).device
            cam = GradCAM(nn_module=model, target_layers=layer, postprocessing=_unchanged)
            with torch.enable_grad():
                heat = cam(image.to(device).float().requires_grad_(False), class_idx=class_index)
        finally:
            _remove_hooks_since(target, hooks_before)
            model.train(was_training)
    return scale_to_peak(heat.detach().float().cpu().numpy()[0, 0])
