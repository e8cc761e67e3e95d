import numpy as np
import pytest
from verticals.core.monitoring import stats


def test_psi_zero_for_identical_and_known_value() -> None:
    assert stats.psi(np.array([1, 1]), np.array([1, 1])) == pytest.approx(0.0)
    # (0.8-0.5)ln(0.8/0.5) + (0.2-0.5)ln(0.2/0.5)
    expected = 0.3 * np.log(1.6) + (-0.3) * np.log(0.4)
    assert stats.psi(np.array([5, 5]), np.array([8, 2])) == pytest.approx(expected)


def test_bin_counts_uses_right_closed_bins() -> None:
    counts = stats.bin_counts(np.array([-1.0, 0.0, 0.5, 1.0, 2.0]), np.array([0.0, 1.0]))
    assert counts.tolist() == [2.0, 2.0, 1.0]


def test_ks_matches_scipy_and_cdf_approximation() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=4000), rng.normal(0.5, 1, size=4000)
    exact = stats.ks_statistic(a, b)
    # N(0,1) vs N(0.5,1): sup |Phi(x) - Phi(x-0.5)| = 2*Phi(0.25) - 1 = 0.197
    assert exact == pytest.approx(0.197, abs=0.03)
    points = np.quantile(a, np.linspace(0.01, 0.99, 99))
    cdf = np.searchsorted(np.sort(a), points, side="right") / len(a)
    assert stats.ks_from_cdf(points, cdf, b) == pytest.approx(exact, abs=0.02)
    assert stats.ks_critical(1000, 1000, 0.05) == pytest.approx(1.358 * np.sqrt(2 / 1000), rel=1e-3)


def test_wasserstein_of_a_shift_is_the_shift() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=5000)
    assert stats.wasserstein_normalised(a, a + 2.0, scale=2.0) == pytest.approx(1.0)
    levels = np.linspace(0.01, 0.99, 99)
    w = stats.wasserstein_from_quantiles(np.quantile(a, levels), a + 0.5, levels, scale=1.0)
    assert w == pytest.approx(0.5, abs=1e-9)


def test_js_and_chi_square() -> None:
    assert stats.js_distance(np.array([1, 0]), np.array([0, 1])) == pytest.approx(1.0)
    assert stats.js_distance(np.array([3, 1]), np.array([6, 2])) == pytest.approx(0.0)
    assert stats.chi_square_pvalue(np.array([0.5, 0.5]), np.array([500, 500])) == pytest.approx(1.0)
    assert stats.chi_square_pvalue(np.array([0.5, 0.5]), np.array([700, 300])) < 1e-20


def test_mmd_small_for_same_distribution_large_for_shift() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(200, 4)), rng.normal(size=(200, 4))
    same = stats.mmd_rbf(x, y)
    shifted = stats.mmd_rbf(x, y + 1.5)
    assert same < 0.02 < 0.2 < shifted
    assert stats.mmd_rbf(x, x) == pytest.approx(0.0, abs=1e-12)


def test_mahalanobis_mean_shift_is_the_standardised_distance() -> None:
    rng = np.random.default_rng(3)
    cov = np.diag([4.0, 1.0])
    shifted = rng.multivariate_normal([2.0, 0.0], cov, size=20000)
    distance, p = stats.mahalanobis_mean_shift(np.zeros(2), cov, shifted)
    assert distance == pytest.approx(1.0, abs=0.03)  # 2 / sqrt(4)
    assert p < 1e-12
    same = rng.multivariate_normal([0.0, 0.0], cov, size=500)
    distance, p = stats.mahalanobis_mean_shift(np.zeros(2), cov, same)
    assert distance < 0.2 and p > 1e-4
