"""Heatmap overlays: Grad-CAM on the analysed region (MONAI ``blend_images``) and its legend.

What the reader sees. The Grad-CAM map is scaled per image to its peak (1 = this image's
strongest evidence for the positive finding, 0 = none; ``verticals.core.explain.gradcam``).
Only the top of it is drawn: pixels at or above :data:`DISPLAY_LEVEL` (half of the peak) are
tinted with the jet colour of their value (green-cyan at half the peak, yellow, red at the
peak); everything below stays the plain grey image. A fixed fraction of the peak rather than a
percentile: a focal map tints a small area and a diffuse one a large area, which is what the
model did, whereas a percentile would always tint the same share and suggest a focus that may
not exist. No tint at all means no location raised the score (the map is all zeros).

Colours are relative to this image: they say where, not how likely; the probability is the
model's output, shown beside the image.

``heatmap_png`` (the API's ``heatmap.png``) is the analysed centre square, with the
:func:`legend_strip` under it; the dashboard shows the same strip under its own composition.
"""

from __future__ import annotations

import io

import numpy as np
from verticals.domains.medical.runtime import centre_square, resize

MIN_SIDE, MAX_SIDE = 256, 512
DISPLAY_LEVEL = 0.5  # fraction of the image's Grad-CAM peak below which nothing is tinted
ALPHA = 0.45  # weight of the colour over the grey image where tinted
CMAP = "jet"
LEGEND_HEIGHT = 36
_BACKGROUND = 0.5  # the grey the legend's colours are blended over
_FONT_SIZE = 11


def display_side(pixels: np.ndarray) -> int:
    return int(np.clip(min(pixels.shape), MIN_SIDE, MAX_SIDE))


def shown(cam: np.ndarray, level: float = DISPLAY_LEVEL) -> np.ndarray:
    """``cam`` with every value below ``level`` set to 0 (0 is drawn transparent)."""
    if not 0.0 < level <= 1.0:
        raise ValueError(f"level must be in (0, 1], got {level}")
    cam = np.asarray(cam, dtype=np.float32)
    return np.where(cam >= level, cam, 0.0).astype(np.float32)


def blend(
    gray: np.ndarray, cam: np.ndarray, alpha: float = ALPHA, level: float = DISPLAY_LEVEL
) -> np.ndarray:
    """``gray`` [H, W] and ``cam`` [h, w] in [0, 1] → RGB uint8 [H, W, 3]: the jet colour of the
    CAM blended over the grey image where the CAM is at least ``level``, plain grey elsewhere."""
    from monai.visualize.utils import blend_images

    height, width = gray.shape
    cam_full = cam if cam.shape == gray.shape else _resize_rect(cam, height, width)
    rgb = blend_images(
        np.clip(gray, 0.0, 1.0)[None].astype(np.float32),
        shown(cam_full, level)[None],
        alpha=alpha,
        cmap=CMAP,
        rescale_arrays=False,
        transparent_background=True,
    )
    rgb = np.asarray(rgb, dtype=np.float32)
    return (np.clip(np.moveaxis(rgb, 0, -1), 0, 1) * 255).round().astype(np.uint8)


def legend_strip(width: int, alpha: float = ALPHA, level: float = DISPLAY_LEVEL) -> np.ndarray:
    """RGB uint8 ``[LEGEND_HEIGHT, width, 3]``: the colour bar, 0 (left) to the peak (right).

    The part below ``level`` is plain grey marked "not shown"; above it, the colours as
    :func:`blend` draws them over a mid-grey pixel. Tick labels: the level and the peak.
    """
    from matplotlib import colormaps
    from PIL import Image, ImageDraw, ImageFont

    if width < 64:
        raise ValueError(f"width must be at least 64 pixels, got {width}")
    margin, bar_top, bar_height = 4, 4, 12
    inner = width - 2 * margin
    values = np.linspace(0.0, 1.0, inner, dtype=np.float32)
    colours = colormaps[CMAP](values)[:, :3]
    bar = np.where(
        (values >= level)[:, None], alpha * colours + (1 - alpha) * _BACKGROUND, _BACKGROUND
    )
    strip = np.zeros((LEGEND_HEIGHT, width, 3), dtype=np.uint8)
    strip[bar_top : bar_top + bar_height, margin : margin + inner] = (
        (bar * 255).round().astype(np.uint8)[None]
    )
    image = Image.fromarray(strip)
    draw = ImageDraw.Draw(image)
    try:
        font = ImageFont.load_default(size=_FONT_SIZE)
    except TypeError:  # Pillow < 10.1: the fixed-size bitmap font
        font = ImageFont.load_default()
    level_x = margin + int(round(level * (inner - 1)))
    draw.line([(level_x, bar_top), (level_x, bar_top + bar_height + 2)], fill=(255, 255, 255))
    if level_x - margin > 60:
        draw.text(
            ((margin + level_x) / 2, bar_top + bar_height / 2),
            "not shown",
            fill=(30, 30, 30),
            font=font,
            anchor="mm",
        )
    text_y = bar_top + bar_height + 3
    draw.text(
        (level_x, text_y), f"{level:.0%} of peak", fill=(255, 255, 255), font=font, anchor="ma"
    )
    draw.text((margin + inner, text_y), "peak", fill=(255, 255, 255), font=font, anchor="ra")
    draw.text((margin, text_y), "0", fill=(255, 255, 255), font=font, anchor="la")
    return np.asarray(image, dtype=np.uint8)


def legend_text(cam: np.ndarray, label: str, level: float = DISPLAY_LEVEL) -> str:
    """What the overlay of ``cam`` shows, in words, for the reader of the image."""
    if not np.any(np.asarray(cam) >= level):
        return (
            f"Grad-CAM for {label!r}: no region of this image raised the model's score for "
            f"{label!r}, so nothing is tinted."
        )
    return (
        f"Grad-CAM for {label!r}: tinted where the regions that raised the model's score for "
        f"{label!r} reach at least {level:.0%} of this image's strongest (green, then yellow, "
        "red at the strongest); untinted below. Colours are relative to this image: they show "
        f"where, not how likely {label!r} is (the probability is beside the image). Drawn on "
        "the centre square the model analysed."
    )


def _resize_rect(array: np.ndarray, height: int, width: int) -> np.ndarray:
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(array, dtype=np.float32))
    resized = image.resize((width, height), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def heatmap_png(pixels: np.ndarray, cam: np.ndarray) -> bytes:
    """PNG of the centre square the model analysed (``side`` × ``side`` on top, Grad-CAM drawn
    as the module docstring says), with the :func:`legend_strip` below it."""
    square = centre_square(pixels)
    side = display_side(square)
    gray = resize(square, side)
    return png_bytes(np.concatenate([blend(gray, cam), legend_strip(side)], axis=0))


def png_bytes(array: np.ndarray) -> bytes:
    from PIL import Image

    if array.dtype != np.uint8:
        array = (np.clip(array, 0, 1) * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
