"""Heatmap overlays: only the top of the map is tinted, the legend says what colours mean, and
the shipped models' maps on the shipped demo studies are readable."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from verticals.domains.medical.overlay import (
    DISPLAY_LEVEL,
    LEGEND_HEIGHT,
    blend,
    heatmap_png,
    legend_strip,
    legend_text,
    shown,
)

TOP_SHARE = 0.2  # "the top 20% of pixels" ...
MIN_TASK_MASS = 0.5  # ... hold at least half of the map's mass (median over a task's samples)
MIN_SAMPLE_MASS = 0.4  # and twice a flat map's 0.2 on every sample


def _untinted(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(int)
    return (rgb[..., 0] == rgb[..., 1]) & (rgb[..., 1] == rgb[..., 2])


def _top_mass(cam: np.ndarray) -> float:
    """Share of the map's total held by its top ``TOP_SHARE`` pixels (a flat map: 0.2)."""
    values = np.sort(cam.ravel())[::-1]
    return float(values[: round(TOP_SHARE * values.size)].sum() / values.sum())


def test_blend_tints_only_the_top_of_the_map():
    gray = np.full((20, 40), 0.5, np.float32)
    cam = np.tile(np.linspace(0.0, 1.0, 40, dtype=np.float32), (20, 1))
    rgb = blend(gray, cam)
    assert rgb.shape == (20, 40, 3) and rgb.dtype == np.uint8
    below = cam < DISPLAY_LEVEL
    assert _untinted(rgb)[below].all() and (rgb[below] == 128).all()
    assert not _untinted(rgb)[~below].any()
    red, green, blue = rgb[0, -1].astype(int)  # the peak is drawn red
    assert red > green + 40 and red > blue + 40
    # a CAM smaller than the image is stretched over it
    assert blend(gray, cam[::2, ::2]).shape == (20, 40, 3)


def test_shown_rejects_a_level_outside_0_1():
    np.testing.assert_allclose(shown(np.array([0.2, 0.5, 0.9]), 0.5), [0, 0.5, 0.9])
    for level in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="level"):
            shown(np.zeros(3), level)


def test_legend_strip_is_grey_below_the_level_and_coloured_above():
    strip = legend_strip(300)
    assert strip.shape == (LEGEND_HEIGHT, 300, 3) and strip.dtype == np.uint8
    bar_row = strip[6]  # inside the bar, away from the "not shown" text
    inner = np.arange(4, 296)
    value = (inner - 4) / (len(inner) - 1)
    grey = _untinted(bar_row)[inner]
    assert grey[value < DISPLAY_LEVEL - 0.02].all()
    assert not grey[value > DISPLAY_LEVEL + 0.02].any()
    with pytest.raises(ValueError, match="width"):
        legend_strip(10)


def test_legend_text_names_the_finding_and_the_empty_case():
    cam = np.zeros((28, 28), np.float32)
    assert "no region" in legend_text(cam, "pneumonia")
    cam[3:6, 3:6] = 1.0
    text = legend_text(cam, "pneumonia")
    assert "'pneumonia'" in text and "50%" in text and "not how likely" in text


def test_heatmap_png_is_the_square_above_its_legend():
    pixels = np.random.default_rng(0).random((300, 400), dtype=np.float32)
    cam = np.zeros((28, 28), np.float32)
    cam[10:14, 10:14] = 1.0
    image = np.asarray(Image.open(io.BytesIO(heatmap_png(pixels, cam))).convert("RGB"))
    assert image.shape == (300 + LEGEND_HEIGHT, 300, 3)
    tinted = ~_untinted(image[:300])
    assert 0.0 < tinted.mean() < 0.1  # the hot square, not the image
    assert tinted[128, 128] and not tinted[20, 20]  # CAM cell 12 of 28 → pixel 128 of 300


def test_shipped_models_heatmaps_on_the_demo_studies_are_readable():
    """The real path of a study (decode → model input → the shipped classifier's Grad-CAM with
    its card's layer → heatmap PNG): the map is concentrated and most of the picture stays grey.
    The maps before the fix (MONAI's flipped normaliser) gave a top-20% share of 0.21–0.29 and
    tinted every pixel."""
    from verticals.domains.medical.imaging import decode_bytes
    from verticals.domains.medical.model import shipped_classifier
    from verticals.domains.medical.overlay import display_side
    from verticals.domains.medical.plugin import MedicalDomain
    from verticals.domains.medical.runtime import InferenceEngine, centre_square, model_input

    engine = InferenceEngine(loader=shipped_classifier)
    samples = sorted(MedicalDomain().demo_data().rglob("*.dcm"))
    assert {p.parent.name for p in samples} == {"pneumonia", "breast"}
    masses: dict[str, list[float]] = {}
    for path in samples:
        task = path.parent.name
        classifier = engine.classifier(task)
        decoded = decode_bytes(path.read_bytes(), path.name)
        x = model_input(decoded.pixels, classifier.input_size)
        cam = engine.gradcam(task, x)
        where = f"{path.name} (Grad-CAM layer {classifier.network.gradcam_layer!r} of its card)"
        if not cam.any():  # nothing argues for the positive finding: only right if negative
            assert float(classifier.predict(x[None])[0]) < classifier.threshold, where
            continue
        mass = _top_mass(cam)
        masses.setdefault(task, []).append(mass)
        assert mass >= MIN_SAMPLE_MASS, f"{where}: top-20% share {mass:.2f}"

        side = display_side(centre_square(decoded.pixels))
        png = np.asarray(Image.open(io.BytesIO(heatmap_png(decoded.pixels, cam))).convert("RGB"))
        grey = float(_untinted(png[:side]).mean())
        assert grey > 0.5, f"{where}: only {grey:.0%} of the picture left untinted"
    for task in ("pneumonia", "breast"):
        assert masses.get(task), f"no {task} demo study has a non-empty map"
        median = float(np.median(masses[task]))
        assert median >= MIN_TASK_MASS, f"{task}: median top-20% share {median:.2f}"
