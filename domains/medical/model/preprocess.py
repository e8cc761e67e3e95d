"""The one preprocessing chain between a decoded image and the network, for every medical task.

Training, evaluation and serving all call :func:`preprocess` (one image) or
:func:`preprocess_batch` (a stack, image by image through the same chain), so the network sees
the same tensor for the same picture whichever way it arrived. The chain (MONAI transforms,
channel-first ``[1, H, W]`` float in [0, 1]):

1. ``CenterSpatialCrop`` to the largest centred square (MedMNIST cropped this way before
   resizing, so a non-square upload is not squashed);
2. ``Resize`` to the task's input side: ``area`` (box averaging) when shrinking, ``bilinear``
   when enlarging a small image;
3. ``ScaleIntensityRange`` with ``clip``: values stay in [0, 1] after interpolation.

A picture already at the input size passes through unchanged (the crop and resize are
identities), which is how MedMNIST training images travel.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def centre_square(pixels: np.ndarray) -> np.ndarray:
    """The largest centred square of ``[H, W]`` (or ``[C, H, W]``)."""
    height, width = pixels.shape[-2:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return pixels[..., top : top + side, left : left + side]


@lru_cache(maxsize=16)
def _resize(size: int, mode: str):  # noqa: ANN202 - monai Compose
    from monai.transforms import Compose, Resize, ScaleIntensityRange

    kwargs = {"align_corners": False} if mode == "bilinear" else {}
    return Compose(
        [
            Resize(spatial_size=(size, size), mode=mode, anti_aliasing=False, **kwargs),
            ScaleIntensityRange(a_min=0.0, a_max=1.0, b_min=0.0, b_max=1.0, clip=True),
        ]
    )


def preprocess(image: np.ndarray, size: int) -> np.ndarray:
    """``[H, W]`` or ``[1, H, W]`` float in [0, 1] → ``[1, size, size]`` float32: the network's
    input for that image."""
    import torch
    from monai.transforms import CenterSpatialCrop

    array = np.asarray(image, dtype=np.float32)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[0] != 1:
        raise ValueError(f"expected [H, W] or [1, H, W], got shape {array.shape}")
    side = min(array.shape[-2:])
    if array.shape[-2:] == (size, size):
        return np.clip(array, 0.0, 1.0)
    mode = "area" if side >= size else "bilinear"
    square = CenterSpatialCrop(roi_size=(side, side))(torch.from_numpy(array))
    out = _resize(size, mode)(square)
    return np.ascontiguousarray(np.asarray(out, dtype=np.float32))


def preprocess_batch(images: np.ndarray, size: int) -> np.ndarray:
    """``[N, 1, H, W]`` → ``[N, 1, size, size]`` float32, each image through :func:`preprocess`."""
    array = np.asarray(images, dtype=np.float32)
    if array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4 or array.shape[1] != 1:
        raise ValueError(f"expected [N, 1, H, W], got shape {array.shape}")
    if array.shape[-2:] == (size, size):
        return np.clip(array, 0.0, 1.0)
    if len(array) == 0:
        return np.zeros((0, 1, size, size), np.float32)
    return np.stack([preprocess(image, size) for image in array])
