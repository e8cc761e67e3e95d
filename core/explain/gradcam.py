"""Grad-CAM heatmaps for image classifiers, through MONAI's ``monai.visualize.GradCAM``."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def last_conv_layer(model: nn.Module) -> str:
    """Name of the last ``Conv2d``/``Conv3d`` submodule: the usual Grad-CAM target layer."""
    name = None
    for layer_name, module in model.named_modules():
        if isinstance(module, nn.Conv2d | nn.Conv3d):
            name = layer_name
    if name is None:
        raise ValueError("model has no convolution layer to take Grad-CAM from")
    return name


def grad_cam(
    model: nn.Module,
    image: torch.Tensor,
    *,
    target_layer: str | None = None,
    class_index: int = 0,
) -> np.ndarray:
    """Grad-CAM of ``class_index`` for one image.

    ``image``: ``[C, H, W]`` (or ``[1, C, H, W]``), already preprocessed as ``model`` expects.
    Returns a float32 ``[H, W]`` map in [0, 1] (all zeros when the gradient vanishes).
    The model is put in eval mode; its parameters are left untouched.
    """
    from monai.visualize import GradCAM

    if image.dim() == 3:
        image = image.unsqueeze(0)
    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(f"image must be [C,H,W] or [1,C,H,W], got {tuple(image.shape)}")
    layer = target_layer or last_conv_layer(model)
    names = {n for n, _ in model.named_modules()}
    if layer not in names:
        raise ValueError(f"target_layer {layer!r} is not a submodule of the model")
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        cam = GradCAM(nn_module=model, target_layers=layer)
        with torch.enable_grad():
            heat = cam(image.to(device).float().requires_grad_(False), class_idx=class_index)
    finally:
        model.train(was_training)
    out = heat.detach().float().cpu().numpy()[0, 0]
    out = np.nan_to_num(out, nan=0.0, posinf=1.0, neginf=0.0)
    low, high = float(out.min()), float(out.max())
    if high - low > 1e-12:
        out = (out - low) / (high - low)
    else:
        out = np.zeros_like(out)
    return out.astype(np.float32)
