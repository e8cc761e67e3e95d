"""Two-sample drift statistics (numpy/scipy only).

Numeric features: PSI over reference-quantile bins, Kolmogorov-Smirnov, Wasserstein-1 normalised
by the reference's spread. Categorical: Jensen-Shannon distance and Pearson's chi-square.
Multivariate (embeddings, image summaries): MMD with an RBF kernel (median heuristic) and a
Mahalanobis mean-shift test against the reference mean and covariance.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps  # type: ignore[import-untyped]  # no stubs installed
from scipy.spatial.distance import jensenshannon  # type: ignore[import-untyped]

EPS = 1e-4  # floor of a bin's share, so an empty bin does not make PSI infinite


def _shares(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        raise ValueError("no observations")
    return counts / total


def psi(expected: np.ndarray, actual: np.ndarray, eps: float = EPS) -> float:
    """Population stability index of two binned distributions (counts or shares, same bins):
    ``sum((a - e) * ln(a / e))``. Below 0.1 stable, 0.1-0.25 moderate, above 0.25 a shift."""
    e = np.clip(_shares(expected), eps, None)
    a = np.clip(_shares(actual), eps, None)
    return float(np.sum((a - e) * np.log(a / e)))


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of ``values`` in the bins ``(-inf, e0], (e0, e1], ..., (e_last, inf)``."""
    index = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="left")
    return np.bincount(index, minlength=len(edges) + 1).astype(np.float64)


def ks_statistic(reference: np.ndarray, current: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic (sup of the CDFs' difference)."""
    return float(sps.ks_2samp(reference, current).statistic)


def ks_from_cdf(points: np.ndarray, reference_cdf: np.ndarray, current: np.ndarray) -> float:
    """KS statistic evaluated at ``points`` (e.g. the reference's quantiles) where the
    reference CDF is known: a lower bound of the exact one, exact at the sketch's resolution."""
    current = np.sort(np.asarray(current, dtype=np.float64))
    current_cdf = np.searchsorted(current, points, side="right") / len(current)
    return float(np.max(np.abs(current_cdf - np.asarray(reference_cdf))))


def ks_critical(n_reference: int, n_current: int, alpha: float) -> float:
    """The asymptotic two-sample KS critical value at level ``alpha``."""
    c = np.sqrt(-0.5 * np.log(alpha / 2.0))
    return float(c * np.sqrt((n_reference + n_current) / (n_reference * n_current)))


def wasserstein_normalised(reference: np.ndarray, current: np.ndarray, scale: float) -> float:
    """Wasserstein-1 distance of two samples in units of ``scale`` (the reference's std)."""
    return float(sps.wasserstein_distance(reference, current) / (scale if scale > 0 else 1.0))


def wasserstein_from_quantiles(
    reference_quantiles: np.ndarray, current: np.ndarray, levels: np.ndarray, scale: float
) -> float:
    """Wasserstein-1 as the mean gap of the quantile functions over ``levels`` (uniform grid),
    in units of ``scale``."""
    current_quantiles = np.quantile(np.asarray(current, dtype=np.float64), levels)
    gap = np.mean(np.abs(current_quantiles - np.asarray(reference_quantiles)))
    return float(gap / (scale if scale > 0 else 1.0))


def js_distance(expected: np.ndarray, actual: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) of two categorical distributions."""
    return float(jensenshannon(_shares(expected), _shares(actual), base=2))


def chi_square_pvalue(expected_shares: np.ndarray, actual_counts: np.ndarray) -> float:
    """p-value of Pearson's chi-square goodness of fit of ``actual_counts`` to the reference
    shares (floored at :data:`EPS` so an unseen category is a large, finite surprise)."""
    counts = np.asarray(actual_counts, dtype=np.float64)
    shares = np.clip(_shares(expected_shares), EPS, None)
    expected = shares / shares.sum() * counts.sum()
    return float(sps.chisquare(counts, expected).pvalue)


def median_bandwidth(x: np.ndarray, y: np.ndarray, max_points: int = 500) -> float:
    """The median pairwise distance of the pooled sample (the RBF kernel's usual width)."""
    pooled = np.vstack([x, y])[:max_points]
    d2 = np.sum((pooled[:, None, :] - pooled[None, :, :]) ** 2, axis=-1)
    median = float(np.sqrt(np.median(d2[np.triu_indices(len(pooled), k=1)])))
    return median if median > 0 else 1.0


def mmd_rbf(x: np.ndarray, y: np.ndarray, bandwidth: float | None = None) -> float:
    """Squared maximum mean discrepancy (biased estimate) of samples ``x`` and ``y``
    (rows are points) under an RBF kernel; bandwidth by the median heuristic when None."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    sigma = bandwidth if bandwidth is not None else median_bandwidth(x, y)
    gamma = 1.0 / (2.0 * sigma**2)

    def kernel_mean(a: np.ndarray, b: np.ndarray) -> float:
        d2 = np.sum(a**2, 1)[:, None] + np.sum(b**2, 1)[None, :] - 2.0 * a @ b.T
        return float(np.mean(np.exp(-gamma * np.clip(d2, 0.0, None))))

    return max(kernel_mean(x, x) + kernel_mean(y, y) - 2.0 * kernel_mean(x, y), 0.0)


def mahalanobis_mean_shift(
    mean: np.ndarray, covariance: np.ndarray, current: np.ndarray
) -> tuple[float, float]:
    """How far the current sample's mean lies from the reference mean, in the reference's
    covariance: ``(d, p)`` where ``d`` is the Mahalanobis distance of the two means (effect size,
    independent of the window size) and ``p`` the chi-square p-value of ``n * d**2`` (dims
    degrees of freedom) under no shift."""
    current = np.atleast_2d(np.asarray(current, dtype=np.float64))
    delta = current.mean(axis=0) - np.asarray(mean, dtype=np.float64)
    cov = np.atleast_2d(np.asarray(covariance, dtype=np.float64))
    ridge = 1e-6 * max(float(np.trace(cov)) / len(cov), 1e-12)
    precision = np.linalg.pinv(cov + ridge * np.eye(len(cov)))
    d2 = float(delta @ precision @ delta)
    p = float(sps.chi2.sf(len(current) * d2, df=len(delta)))
    return float(np.sqrt(max(d2, 0.0))), p
