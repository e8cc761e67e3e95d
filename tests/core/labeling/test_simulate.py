"""The simulation loop on a tiny learner: bookkeeping, fairness, and uncertainty's advantage on a
separable problem."""

from __future__ import annotations

import numpy as np
import pytest
from verticals.core.errors import InvalidInput
from verticals.core.labeling.simulate import Learner, SimulationConfig, seed_set, simulate
from verticals.core.labeling.strategies import Costs


class ThresholdLearner:
    """1-D pool, label = x > 0.3; the model puts its threshold between the largest labelled
    negative and the smallest labelled positive. Metric: accuracy on a fine grid."""

    metric = "accuracy"

    def __init__(self, n: int = 2000) -> None:
        self.x = np.random.default_rng(42).uniform(-1, 1, n)
        self.y = (self.x > 0.3).astype(np.int64)
        self.n_pool = n
        self.grid = np.linspace(-1, 1, 4001)
        self.fits: list[np.ndarray] = []

    def fit(self, indices, labels, seed):
        self.fits.append(np.array(indices))
        x = self.x[indices]
        lo = x[labels == 0].max(initial=-1.0)
        hi = x[labels == 1].min(initial=1.0)
        return (lo + hi) / 2

    def predict_proba(self, model, indices):
        return 1 / (1 + np.exp(-(self.x[indices] - model) * 20))

    def embed(self, indices):
        return self.x[indices, None]

    def score(self, model):
        return {"accuracy": float(np.mean((self.grid > model) == (self.grid > 0.3)))}

    def oracle(self, indices):
        return self.y[indices]

    def costs(self):
        return Costs(np.ones(self.n_pool), 1.0)

    def describe(self):
        return "toy threshold"


def test_the_toy_learner_is_a_learner():
    assert isinstance(ThresholdLearner(), Learner)


def test_bookkeeping_nested_sets_and_a_shared_seed_set():
    learner = ThresholdLearner()
    config = SimulationConfig(budgets=(30, 60, 120), seeds=2, initial=10)
    result = simulate(learner, ["uncertainty", "random", "diversity", "hybrid", "cost"], config)
    assert len(result.runs) == 2 * 5
    for run in result.runs:
        assert run.labelled[:10] == result.seed_sets[run.seed]  # every strategy starts here
        assert len(run.labelled) == 120 == len(set(run.labelled))
        assert len(run.metrics) == 3
    # every fit saw a set containing the previous one (nested labelled sets, budgets monotone)
    sizes = [len(f) for f in learner.fits]
    assert sizes[-1] == learner.n_pool  # the full-data fit comes last
    assert result.seed_sets[0] != result.seed_sets[1]
    rows = result.summary("uncertainty")
    assert [r["budget"] for r in rows] == [30, 60, 120]
    assert {"accuracy_mean", "accuracy_sd", "positive_labels_mean"} <= set(rows[0])
    line = result.to_json()
    assert set(line["strategies"]) == {"uncertainty", "random", "diversity", "hybrid", "cost"}
    assert line["full_data_accuracy"] == pytest.approx(1.0, abs=1e-3)
    assert line["initial_labelled"]["size"] == 10


def test_labelled_sets_grow_by_nesting_within_a_run():
    learner = ThresholdLearner()
    simulate(
        learner, ["random"], SimulationConfig(budgets=(20, 40, 80), seeds=1, initial=10, step=10)
    )
    fits = learner.fits[:-1]
    assert [len(f) for f in fits] == [10, 20, 30, 40, 50, 60, 70, 80]
    for small, big in zip(fits, fits[1:], strict=False):
        assert set(small) <= set(big)


def test_uncertainty_beats_random_on_a_separable_problem():
    result = simulate(
        ThresholdLearner(),
        ["uncertainty", "random"],
        SimulationConfig(budgets=(20, 40), seeds=3, initial=10, step=2),
        full_data=False,
    )
    unc = result.summary("uncertainty")[-1]["accuracy_mean"]
    rnd = result.summary("random")[-1]["accuracy_mean"]
    assert unc > rnd and unc > 0.999


def test_seed_set_is_stratified():
    labels = np.r_[np.zeros(990, np.int64), np.ones(10, np.int64)]
    picked = seed_set(labels, 20, 2, np.random.default_rng(0))
    assert len(picked) == 20 and labels[picked].sum() >= 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"budgets": (100, 50)}, "ascending"),
        ({"budgets": (10,), "initial": 20}, "seed set"),
        ({"seeds": 0}, "seeds"),
    ],
)
def test_bad_configs_are_refused(kwargs, message):
    with pytest.raises(InvalidInput, match=message):
        SimulationConfig(**kwargs)


def test_a_budget_beyond_the_pool_is_refused():
    with pytest.raises(InvalidInput, match="exceeds the pool"):
        simulate(ThresholdLearner(100), ["random"], SimulationConfig(budgets=(50, 200)))
