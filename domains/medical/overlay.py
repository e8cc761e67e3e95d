"""Heatmap overlays (Grad-CAM on the analysed region) rendered with MONAI's visualize module."""

from __future__ import annotations

import io

import numpy as np
from verticals.domains.medical.inference import centre_square, resize

MIN_SIDE, MAX_SIDE = 256, 512


def display_side(pixels: np.ndarray) -> int:
    return int(np.clip(min(pixels.shape), MIN_SIDE, MAX_SIDE))


def blend(gray: np.ndarray, cam: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """``gray`` [H, W] and ``cam`` [h, w] in [0, 1] → RGB uint8 [H, W, 3] (jet heatmap blended
    where the CAM is non-zero; MONAI ``blend_images``)."""
    from monai.visualize.utils import blend_images

    height, width = gray.shape
    cam_full = cam if cam.shape == gray.shape else _resize_rect(cam, height, width)
    rgb = blend_images(
        gray[None].astype(np.float32),
        cam_full[None].astype(np.float32),
        alpha=alpha,
        cmap="jet",
        rescale_arrays=False,
        transparent_background=True,
    )
    rgb = np.asarray(rgb, dtype=np.float32)
    return (np.clip(np.moveaxis(rgb, 0, -1), 0, 1) * 255).round().astype(np.uint8)


def _resize_rect(array: np.ndarray, height: int, width: int) -> np.ndarray:
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(array, dtype=np.float32))
    resized = image.resize((width, height), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def heatmap_png(pixels: np.ndarray, cam: np.ndarray) -> bytes:
    """PNG of the centre square the model analysed, with its Grad-CAM blended over it."""
    square = centre_square(pixels)
    side = display_side(square)
    gray = resize(square, side)
    return png_bytes(blend(gray, cam))


def png_bytes(array: np.ndarray) -> bytes:
    from PIL import Image

    if array.dtype != np.uint8:
        array = (np.clip(array, 0, 1) * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
