"""Compare a current window with a reference profile: one row per (feature, statistic).

Default thresholds sit far above what sampling noise reaches on a window of a few hundred records
drawn from the reference itself (see docs/monitoring.md for the figures), and well below what a
real shift gives: a feature is drifted when any of its statistics crosses its threshold.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from pydantic import BaseModel
from verticals.core.monitoring import stats
from verticals.core.monitoring.profile import (
    LEVELS,
    CategoricalSketch,
    EmbeddingSketch,
    NumericSketch,
    ReferenceProfile,
)
from verticals.core.monitoring.spec import WatchedModel, Window

# statistic -> threshold; every one "higher is worse" except the chi-square p-value.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "psi": 0.2,
    "ks": 0.1,
    "wasserstein": 0.25,  # in reference standard deviations
    "js": 0.1,
    "chi2_p": 1e-6,
    "mmd": 0.05,
    "mahalanobis": 0.5,  # distance of the means, in reference standard deviations
}
LOWER_IS_WORSE = frozenset({"chi2_p"})
MMD_POINTS = 256
KS_ALPHA = 1e-5


class FeatureDrift(BaseModel):
    name: str
    statistic: str
    value: float
    threshold: float
    drifted: bool
    output: bool = False

    @property
    def severity(self) -> float:
        """How far past the threshold: 1.0 at it, above 1 beyond it (for hysteresis)."""
        if self.statistic in LOWER_IS_WORSE:
            value = max(self.value, 1e-300)
            return float(np.log(value) / np.log(self.threshold))
        return self.value / self.threshold if self.threshold > 0 else float("inf")


def thresholds_for(watched: WatchedModel) -> dict[str, float]:
    return {**DEFAULT_THRESHOLDS, **dict(watched.thresholds)}


def effective_threshold(statistic: str, base: float, n_reference: int, n_current: int) -> float:
    """``base``, raised where a small window's sampling noise alone could reach it: KS to its
    critical value at level :data:`KS_ALPHA`, Wasserstein to ``6 / sqrt(n)`` reference stds,
    PSI to ``50 / n`` (10 bins). On windows of ~1,000 and more the base holds."""
    n = max(n_current, 1)
    if statistic == "ks":
        return max(base, stats.ks_critical(max(n_reference, 1), n, KS_ALPHA))
    if statistic == "wasserstein":
        return max(base, 6.0 / np.sqrt(n))
    if statistic == "psi":
        return max(base, 50.0 / n)
    return base


def _row(
    name: str,
    statistic: str,
    value: float,
    thresholds: Mapping[str, float],
    output: bool,
    sizes: tuple[int, int],
) -> FeatureDrift:
    threshold = round(effective_threshold(statistic, thresholds[statistic], *sizes), 6)
    drifted = value < threshold if statistic in LOWER_IS_WORSE else value > threshold
    return FeatureDrift(
        name=name,
        statistic=statistic,
        value=round(float(value), 6),
        threshold=threshold,
        drifted=bool(drifted),
        output=output,
    )


def _numeric(sketch: NumericSketch, values: np.ndarray) -> dict[str, float]:
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    edges = np.asarray(sketch.edges)
    return {
        "psi": stats.psi(np.asarray(sketch.shares), stats.bin_counts(values, edges)),
        "ks": stats.ks_from_cdf(np.asarray(sketch.quantiles), np.asarray(sketch.cdf), values),
        "wasserstein": stats.wasserstein_from_quantiles(
            np.asarray(sketch.quantiles), values, LEVELS, sketch.std
        ),
    }


def _categorical(sketch: CategoricalSketch, values: np.ndarray) -> dict[str, float]:
    labels, counts = np.unique(np.asarray(values).astype(str), return_counts=True)
    seen = dict(zip(labels.tolist(), counts.tolist(), strict=True))
    categories = sorted(set(sketch.shares) | set(seen))
    expected = np.array([sketch.shares.get(c, 0.0) for c in categories])
    actual = np.array([seen.get(c, 0) for c in categories], dtype=np.float64)
    return {
        "js": stats.js_distance(expected, actual),
        "chi2_p": stats.chi_square_pvalue(expected, actual),
    }


def _embedding(sketch: EmbeddingSketch, rows: np.ndarray) -> dict[str, float]:
    rows = np.atleast_2d(np.asarray(rows, dtype=np.float64))
    rows = rows[np.all(np.isfinite(rows), axis=1)]
    distance, _ = stats.mahalanobis_mean_shift(
        np.asarray(sketch.mean), np.asarray(sketch.covariance), rows
    )
    recent = rows[-MMD_POINTS:]
    return {
        "mahalanobis": distance,
        "mmd": stats.mmd_rbf(np.asarray(sketch.sample), recent),
    }


def compare(profile: ReferenceProfile, window: Window, watched: WatchedModel) -> list[FeatureDrift]:
    """Every statistic of every watched feature the window holds values for."""
    thresholds = thresholds_for(watched)
    rows: list[FeatureDrift] = []
    for feature in watched.features:
        sketch = profile.features.get(feature.name)
        values = window.columns.get(feature.name)
        if sketch is None or values is None or len(values) == 0:
            continue
        if isinstance(sketch, NumericSketch):
            found = _numeric(sketch, values)
        elif isinstance(sketch, CategoricalSketch):
            found = _categorical(sketch, values)
        else:
            found = _embedding(sketch, values)
        sizes = (sketch.count, len(values))
        rows += [
            _row(feature.name, s, v, thresholds, feature.output, sizes) for s, v in found.items()
        ]
    return rows


def drifted_features(rows: list[FeatureDrift]) -> list[str]:
    names: list[str] = []
    for row in rows:
        if row.drifted and row.name not in names:
            names.append(row.name)
    return names


def current_histogram(sketch: NumericSketch, values: np.ndarray) -> list[float]:
    """Shares of ``values`` over the sketch's display bins (clipped into its range)."""
    edges = np.asarray(sketch.hist_edges)
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return [0.0] * (len(edges) - 1)
    hist, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
    return (hist / len(values)).tolist()
