"""Each active-learning strategy picks what it should on pools built for it."""

from __future__ import annotations

import time

import numpy as np
import pytest
from verticals.core.errors import InvalidInput
from verticals.core.labeling.strategies import (
    STRATEGIES,
    Choice,
    Costs,
    Pool,
    Strategy,
    get_strategy,
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_uncertainty_picks_the_coin_flips(rng):
    p = np.array([0.01, 0.48, 0.97, 0.55, 0.2, 0.99, 0.5])
    choices = get_strategy("uncertainty").select(Pool(p), 3, rng=rng)
    assert [c.index for c in choices] == [6, 1, 3]
    assert choices[0].reason == "uncertain: p=0.50, entropy 0.69"
    assert all(isinstance(c, Choice) for c in choices)


def test_uncertainty_skips_excluded_and_handles_classes(rng):
    p = np.array([[0.34, 0.33, 0.33], [0.9, 0.05, 0.05], [0.5, 0.45, 0.05]])
    picks = get_strategy("uncertainty").select(Pool(p), 2, rng=rng, exclude=[0])
    assert [c.index for c in picks] == [2, 1]
    margin = get_strategy("uncertainty", measure="margin").select(Pool(p), 1, rng=rng)
    assert margin[0].index == 0 and "margin 0.01" in margin[0].reason


def test_margin_uses_the_decision_threshold(rng):
    p = np.array([0.5, 0.1, 0.2, 0.9])
    picks = get_strategy("uncertainty", measure="margin").select(Pool(p, threshold=0.1), 1, rng=rng)
    assert picks[0].index == 1 and "from the threshold 0.1" in picks[0].reason


def test_diversity_covers_far_apart_clusters(rng):
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    emb = np.repeat(centres, 25, axis=0) + rng.normal(0, 0.1, (100, 2))
    cluster = np.repeat(np.arange(4), 25)
    labelled = [0, 1]  # two from cluster 0
    choices = get_strategy("diversity").select(
        Pool(np.full(100, 0.5), embeddings=emb), 3, rng=rng, exclude=labelled
    )
    assert sorted(cluster[[c.index for c in choices]]) == [1, 2, 3]
    assert "far from labelled cases" in choices[0].reason and "k-center" in choices[0].reason
    assert choices[0].score >= choices[1].score >= choices[2].score


def test_diversity_standardises_and_subsamples(rng):
    # the second column's scale would dominate unstandardised distances
    emb = np.column_stack([np.r_[np.zeros(50), np.ones(50)], rng.normal(0, 1000, 100)])
    picks = get_strategy("diversity").select(Pool(np.full(100, 0.5), embeddings=emb), 2, rng=rng)
    assert len(picks) == 2
    big = get_strategy("diversity", max_candidates=30).select(
        Pool(np.full(100, 0.5), embeddings=emb), 5, rng=rng
    )
    assert len({c.index for c in big}) == 5 and "among 30 sampled candidates" in big[0].reason
    with pytest.raises(InvalidInput, match="embeddings"):
        get_strategy("diversity").select(Pool(np.full(3, 0.5)), 1, rng=rng)


def test_cost_picks_high_amount_borderline_cases(rng):
    # cost-optimal decisions with a review costing 5: the expected cost of being wrong is
    # min(p * amount, (1 - p) * 5), at most 5 * amount / (amount + 5), reached at the boundary
    p = np.array([0.3, 0.0099, 0.95, 0.005, 0.2, 0.9])
    amount = np.array([10.0, 500.0, 500.0, 1000.0, 20.0, 500.0])
    choices = get_strategy("cost").select(Pool(p, costs=Costs(amount, 5.0)), 3, rng=rng)
    assert [c.index for c in choices] == [3, 1, 4]
    assert choices[0].reason == "expected cost of a wrong decision 4.97 (p=0.01, decided positive)"
    # with a fixed threshold the decision is the threshold's: p=0.3 on 500 passes as genuine
    pool = Pool(np.array([0.3, 0.6]), costs=Costs(np.array([500.0, 500.0]), 5.0), threshold=0.5)
    picked = get_strategy("cost").select(pool, 1, rng=rng)[0]
    assert picked.index == 0 and picked.score == pytest.approx(150.0)
    assert "decided negative" in picked.reason
    with pytest.raises(InvalidInput, match="costs"):
        get_strategy("cost").select(Pool(p), 1, rng=rng)


def test_random_is_a_uniform_sample_without_repeats(rng):
    picks = get_strategy("random").select(Pool(np.full(50, 0.5)), 10, rng=rng, exclude=range(40))
    assert sorted(c.index for c in picks) == list(range(40, 50))
    assert picks[0].reason == "random sample"


def test_hybrid_switches_to_uncertainty_after_the_warm_start(rng):
    p = np.linspace(0.0, 1.0, 101)  # index 50 is p = 0.5
    hybrid = get_strategy("hybrid", warm_start=10)
    cold = hybrid.select(Pool(p), 4, rng=rng, exclude=[0, 1])
    assert all(c.reason.startswith("random sample") for c in cold)
    warm = hybrid.select(Pool(p), 3, rng=rng, exclude=list(range(10)))
    assert [c.index for c in warm][0] == 50 and warm[0].reason.startswith("uncertain")
    straddle = hybrid.select(Pool(p), 5, rng=rng, exclude=list(range(8)))
    kinds = [c.reason.split(":")[0].split(" (")[0] for c in straddle]
    assert kinds == ["random sample"] * 2 + ["uncertain"] * 3
    assert len({c.index for c in straddle}) == 5 and not {c.index for c in straddle} & set(range(8))


def test_unknown_names_and_options_are_refused():
    with pytest.raises(InvalidInput, match="known: cost, diversity, hybrid, random, uncertainty"):
        get_strategy("entropy")
    with pytest.raises(InvalidInput, match="bad options"):
        get_strategy("random", warm_start=3)
    with pytest.raises(InvalidInput):
        Pool(np.array([0.2, 1.5]))
    for name in STRATEGIES:
        assert isinstance(get_strategy(name), Strategy) and get_strategy(name).name == name


def test_a_pool_of_100k_is_fast(rng):
    n = 100_000
    pool = Pool(
        rng.random(n),
        embeddings=rng.normal(size=(n, 16)),
        costs=Costs(rng.random(n) * 500, 5.0),
    )
    labelled = rng.choice(n, 200, replace=False)
    for name in ("uncertainty", "cost", "random", "hybrid"):
        started = time.perf_counter()
        assert len(get_strategy(name).select(pool, 100, rng=rng, exclude=labelled)) == 100
        assert time.perf_counter() - started < 1.0, name
    started = time.perf_counter()
    assert len(get_strategy("diversity").select(pool, 50, rng=rng, exclude=labelled)) == 50
    assert time.perf_counter() - started < 5.0


def test_doubt_ranks_live_predictions_by_their_margin_to_the_threshold():
    from verticals.core.labeling.strategies import doubt

    near, far = doubt(0.31, 0.3), doubt(0.95, 0.3)
    assert near.score > far.score and 0 <= far.score <= near.score <= 1
    assert "0.31" in near.reason and "threshold 0.3" in near.reason
    assert doubt(1.2, 0.0).score >= 0  # out-of-range inputs are clipped, not refused
