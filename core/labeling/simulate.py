"""Pool-based active-learning simulation: does a strategy reach a metric with fewer labels?

The domain supplies a :class:`Learner` over its pool (its training data, labels hidden) and its
evaluation data. For each seed, one small random seed set (stratified, at least
``min_per_class`` of each class when the pool has them) starts every strategy, so strategies are
compared from the same point. Then, budget by budget (ascending; a budget counts every label
revealed so far, the seed set included), the strategy picks the missing labels from the pool
using the model trained on the labels it has, in batches of at most ``step`` with a retrain
between batches; the oracle reveals their labels; the model is retrained and scored on the
evaluation data. The labelled sets of one strategy and seed are therefore nested across budgets.

Result: per strategy and budget, every metric's mean and sample standard deviation over seeds and
the mean number of positive labels held, plus the metric of a model trained on the whole
labelled pool (the ceiling).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from verticals.core.errors import InvalidInput
from verticals.core.labeling.strategies import Costs, Pool, Strategy, get_strategy

Log = Callable[[str], None]


@runtime_checkable
class Learner(Protocol):
    """What a domain provides for a simulation. Indices address the pool (0 .. n_pool-1).

    - ``fit(indices, labels, seed)``: a model trained on those pool items and labels;
    - ``predict_proba(model, indices)``: (m,) positive-class or (m, k) class probabilities;
    - ``embed(indices)``: (m, d) features for diversity, or None when the learner has none;
    - ``score(model)``: metrics on the evaluation data, ``metric`` (the headline) among them;
    - ``oracle(indices)``: the true labels (what an expert would answer);
    - ``costs()``: per-item costs of wrong decisions for the cost strategy, or None;
    - ``describe()``: one paragraph saying what the pool, the model and the evaluation are.
    """

    n_pool: int
    metric: str

    def fit(self, indices: np.ndarray, labels: np.ndarray, seed: int) -> Any: ...

    def predict_proba(self, model: Any, indices: np.ndarray) -> np.ndarray: ...

    def embed(self, indices: np.ndarray) -> np.ndarray | None: ...

    def score(self, model: Any) -> dict[str, float]: ...

    def oracle(self, indices: np.ndarray) -> np.ndarray: ...

    def costs(self) -> Costs | None: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class SimulationConfig:
    budgets: tuple[int, ...] = (100, 200, 400, 800)
    seeds: int = 3
    initial: int = 20
    min_per_class: int = 2
    step: int | None = None  # at most this many labels per batch (None: one batch per budget)

    def __post_init__(self) -> None:
        budgets = tuple(int(b) for b in self.budgets)
        if not budgets or any(b2 <= b1 for b1, b2 in zip(budgets, budgets[1:], strict=False)):
            raise InvalidInput(f"budgets must be strictly ascending, got {list(budgets)}")
        if self.initial < 1 or budgets[0] < self.initial:
            raise InvalidInput(
                f"the first budget ({budgets[0]}) must hold the seed set ({self.initial} labels)"
            )
        if self.seeds < 1:
            raise InvalidInput(f"seeds must be >= 1, got {self.seeds}")
        if self.step is not None and self.step < 1:
            raise InvalidInput(f"step must be >= 1, got {self.step}")
        object.__setattr__(self, "budgets", budgets)


@dataclass
class Run:
    """One strategy and seed: the labelled pool indices in the order revealed, and the metrics
    after each budget."""

    strategy: str
    seed: int
    labelled: list[int]
    metrics: list[dict[str, float]] = field(default_factory=list)
    positives: list[int] = field(default_factory=list)  # positive labels held at each budget


@dataclass
class SimulationResult:
    metric: str
    budgets: tuple[int, ...]
    seed_sets: dict[int, list[int]]
    runs: list[Run]
    full_data: dict[str, float]
    description: str = ""
    seconds: float = 0.0

    def summary(self, strategy: str) -> list[dict[str, float]]:
        """Per budget: ``budget``, ``<metric>_mean`` / ``<metric>_sd`` for every metric and
        ``positive_labels_mean``."""
        runs = [r for r in self.runs if r.strategy == strategy]
        rows = []
        for b, budget in enumerate(self.budgets):
            row: dict[str, float] = {"budget": budget}
            for name in runs[0].metrics[b]:
                values = np.array([r.metrics[b][name] for r in runs], dtype=np.float64)
                row[f"{name}_mean"] = float(values.mean())
                row[f"{name}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            row["positive_labels_mean"] = float(np.mean([r.positives[b] for r in runs]))
            rows.append(row)
        return rows

    def to_json(self) -> dict[str, Any]:
        strategies = list(dict.fromkeys(r.strategy for r in self.runs))
        return {
            "strategies": {s: self.summary(s) for s in strategies},
            f"full_data_{self.metric}": self.full_data.get(self.metric),
            **{f"full_data_{k}": v for k, v in self.full_data.items() if k != self.metric},
            "metric": self.metric,
            "seeds": len(self.seed_sets),
            "initial_labelled": {
                "size": len(next(iter(self.seed_sets.values()))),
                "how": "random, stratified (at least min_per_class of each class), the same for "
                "every strategy within a seed",
            },
            "seconds": round(self.seconds, 1),
        }


def seed_set(
    labels: np.ndarray, size: int, min_per_class: int, rng: np.random.Generator
) -> list[int]:
    """``size`` random pool indices with at least ``min_per_class`` of each class present (as
    many as there are when fewer), the rest drawn uniformly: a small set that can train a model."""
    n = len(labels)
    if size > n:
        raise InvalidInput(f"the seed set ({size}) is larger than the pool ({n})")
    picked: list[int] = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        take = min(min_per_class, len(members), size - len(picked))
        picked += rng.choice(members, take, replace=False).tolist()
    rest = np.setdiff1d(np.arange(n), picked)
    picked += rng.choice(rest, size - len(picked), replace=False).tolist()
    return sorted(int(i) for i in picked)


def _pool(learner: Learner, model: Any, strategy: Strategy, everything: np.ndarray) -> Pool:
    embeddings = learner.embed(everything) if strategy.name == "diversity" else None
    costs = learner.costs() if strategy.name == "cost" else None
    return Pool(learner.predict_proba(model, everything), embeddings=embeddings, costs=costs)


def run_strategy(
    learner: Learner,
    strategy: Strategy,
    start: list[int],
    config: SimulationConfig,
    seed: int,
    log: Log | None = None,
) -> Run:
    """One strategy from the seed set ``start`` through every budget."""
    rng = np.random.default_rng([seed, 1])  # strategy draws: independent of the seed set's
    everything = np.arange(learner.n_pool)
    labelled = list(start)
    labels = {i: int(y) for i, y in zip(start, learner.oracle(np.array(start)), strict=True)}
    run = Run(strategy.name, seed, labelled)

    def fit() -> Any:
        idx = np.array(labelled)
        return learner.fit(idx, np.array([labels[i] for i in labelled]), seed)

    model = fit()
    for budget in config.budgets:
        while len(labelled) < budget:
            k = budget - len(labelled)
            if config.step is not None:
                k = min(k, config.step)
            pool = _pool(learner, model, strategy, everything)
            chosen = [c.index for c in strategy.select(pool, k, rng=rng, exclude=labelled)]
            if not chosen:
                raise InvalidInput(f"the pool ({learner.n_pool}) is smaller than budget {budget}")
            for i, y in zip(chosen, learner.oracle(np.array(chosen)), strict=True):
                labels[i] = int(y)
            labelled.extend(chosen)
            model = fit()
        scores = learner.score(model)
        run.metrics.append(scores)
        positives = sum(1 for i in labelled if labels[i] > 0)
        run.positives.append(positives)
        if log is not None:
            log(
                f"{strategy.name:<12} seed {seed} budget {budget:>5}: "
                f"{learner.metric} {scores[learner.metric]:.4f} ({positives} positive labels)"
            )
    return run


def simulate(
    learner: Learner,
    strategies: Sequence[str | Strategy],
    config: SimulationConfig,
    *,
    log: Log | None = None,
    full_data: bool = True,
) -> SimulationResult:
    """Run every strategy for every seed (seeds 0 .. seeds-1) on ``learner``; see the module."""
    started = time.perf_counter()
    chosen = [get_strategy(s) if isinstance(s, str) else s for s in strategies]
    names = [s.name for s in chosen]
    if len(set(names)) != len(names):
        raise InvalidInput(f"each strategy once, please: {names}")
    if config.budgets[-1] > learner.n_pool:
        raise InvalidInput(
            f"the largest budget ({config.budgets[-1]}) exceeds the pool ({learner.n_pool})"
        )
    all_labels = learner.oracle(np.arange(learner.n_pool))
    seed_sets: dict[int, list[int]] = {}
    runs = []
    for seed in range(config.seeds):
        rng = np.random.default_rng([seed, 0])
        seed_sets[seed] = seed_set(all_labels, config.initial, config.min_per_class, rng)
        for strategy in chosen:
            runs.append(run_strategy(learner, strategy, seed_sets[seed], config, seed, log))
    ceiling: dict[str, float] = {}
    if full_data:
        everything = np.arange(learner.n_pool)
        ceiling = learner.score(learner.fit(everything, all_labels, 0))
        if log is not None:
            log(
                f"full data ({learner.n_pool} labels): {learner.metric} {ceiling[learner.metric]:.4f}"
            )
    return SimulationResult(
        metric=learner.metric,
        budgets=config.budgets,
        seed_sets=seed_sets,
        runs=runs,
        full_data=ceiling,
        description=learner.describe(),
        seconds=time.perf_counter() - started,
    )
