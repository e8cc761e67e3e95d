"""Active-learning strategies: which unlabelled items of a pool are worth an expert's time.

A :class:`Pool` holds what the current model says about every item (its probabilities) and,
when a strategy needs them, the items' embeddings and the costs of wrong decisions. A strategy's
``select(pool, k, rng=..., exclude=...)`` returns up to ``k`` :class:`Choice` objects, best first,
never an excluded (already labelled or queued) index; each carries a short human reason the
queue shows. Pure numpy, vectorised: a pool of 100k items takes well under a second, except
k-center greedy, which is O(candidates * k * d) and subsamples candidates above
``max_candidates`` (50k by default; the reason says so).

Strategies (``get_strategy(name, **options)``):

- ``uncertainty``: highest predictive entropy (``measure="margin"``: smallest gap between the two
  most likely classes, or for a binary pool with a decision threshold, closest to it);
- ``diversity``: k-center greedy on standardised embeddings, far from the labelled items and from
  each other;
- ``cost``: largest expected cost of the current decision being wrong: ``p * cost_fn`` when it
  says negative (genuine), ``(1 - p) * cost_fp`` when it says positive (fraud);
- ``random``: a uniform sample;
- ``hybrid``: random for the first ``warm_start`` labels, uncertainty after (safe at a cold start,
  where a model trained on a handful of labels is a poor judge of its own uncertainty).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from verticals.core.errors import InvalidInput

DEFAULT_MAX_CANDIDATES = 50_000
Indices = np.ndarray | Sequence[int] | None  # pool indices to leave out
_EPS = 1e-12


@dataclass(frozen=True)
class Costs:
    """What a wrong decision costs, per item: a missed positive (``false_negative``, shape (n,),
    e.g. the transaction amount) and a false alarm (``false_positive``, a constant or (n,), e.g.
    an analyst's review)."""

    false_negative: np.ndarray
    false_positive: float | np.ndarray


@dataclass(frozen=True)
class Pool:
    """The unlabelled pool as the current model sees it.

    ``probabilities``: (n,) positive-class probability, or (n, k) class probabilities (rows sum
    to 1). ``embeddings``: optional (n, d) features or embeddings (diversity needs them).
    ``costs``: optional, for the cost strategy. ``threshold``: the decision threshold on the
    positive-class probability, when decisions are not cost-optimal (cost, margin).
    """

    probabilities: np.ndarray
    embeddings: np.ndarray | None = None
    costs: Costs | None = None
    threshold: float | None = None

    def __post_init__(self) -> None:
        p = np.asarray(self.probabilities, dtype=np.float64)
        if p.ndim not in (1, 2) or len(p) == 0:
            raise InvalidInput(f"probabilities must be (n,) or (n, k), got shape {p.shape}")
        if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
            raise InvalidInput("probabilities must be finite and within [0, 1]")
        object.__setattr__(self, "probabilities", p)
        n = len(p)
        if self.embeddings is not None:
            e = np.asarray(self.embeddings, dtype=np.float64)
            if e.ndim != 2 or len(e) != n:
                raise InvalidInput(f"embeddings must be ({n}, d), got shape {e.shape}")
            object.__setattr__(self, "embeddings", e)
        if self.costs is not None:
            fn = np.asarray(self.costs.false_negative, dtype=np.float64)
            fp = np.broadcast_to(np.asarray(self.costs.false_positive, np.float64), (n,))
            if fn.shape != (n,) or (fn < 0).any() or (fp < 0).any():
                raise InvalidInput(f"costs must be non-negative, shape ({n},) or scalar")
            object.__setattr__(self, "costs", Costs(fn, fp))
        if self.threshold is not None and not 0 < self.threshold < 1:
            raise InvalidInput(f"threshold must be in (0, 1), got {self.threshold}")

    def __len__(self) -> int:
        return len(self.probabilities)

    @property
    def positive(self) -> np.ndarray:
        """(n,) positive-class probability (the last column of a (n, k) pool)."""
        p = self.probabilities
        return p if p.ndim == 1 else p[:, -1]

    def class_probabilities(self) -> np.ndarray:
        """(n, k) probabilities; a binary (n,) pool becomes (n, 2)."""
        p = self.probabilities
        return np.column_stack([1 - p, p]) if p.ndim == 1 else p


@dataclass(frozen=True)
class Choice:
    index: int
    score: float
    reason: str


@runtime_checkable
class Strategy(Protocol):
    @property
    def name(self) -> str: ...

    def select(
        self,
        pool: Pool,
        k: int,
        *,
        rng: np.random.Generator,
        exclude: Indices = None,
    ) -> list[Choice]: ...


def _candidates(n: int, k: int, exclude: Indices) -> np.ndarray:
    """Indices not excluded, in order. Refuses a negative ``k`` or out-of-range exclusions."""
    if k < 0:
        raise InvalidInput(f"k must be >= 0, got {k}")
    mask = np.ones(n, dtype=bool)
    if exclude is not None:
        ex = np.asarray(exclude, dtype=np.int64).reshape(-1)
        if len(ex) and (ex.min() < 0 or ex.max() >= n):
            raise InvalidInput(f"exclude holds indices outside the pool of {n}")
        mask[ex] = False
    return np.flatnonzero(mask)


def _top(
    candidates: np.ndarray, scores: np.ndarray, k: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` candidates with the highest scores, best first; ties broken at random."""
    k = min(k, len(candidates))
    if k == 0:
        return candidates[:0], scores[:0]
    perm = rng.permutation(len(candidates))
    c, s = candidates[perm], scores[perm]
    if k < len(c):
        part = np.argpartition(-s, k - 1)[:k]
        c, s = c[part], s[part]
    order = np.argsort(-s, kind="stable")
    return c[order], s[order]


def entropy(probabilities: np.ndarray) -> np.ndarray:
    """Row entropy in nats of (n, k) probabilities."""
    p = np.clip(probabilities, _EPS, 1.0)
    return -(probabilities * np.log(p)).sum(axis=1)


@dataclass(frozen=True)
class Uncertainty:
    """Highest entropy, or (``measure="margin"``) smallest margin between the top two classes;
    for a binary pool with a threshold, margin is the distance to the threshold."""

    measure: Literal["entropy", "margin"] = "entropy"
    name: str = field(default="uncertainty", init=False)

    def __post_init__(self) -> None:
        if self.measure not in ("entropy", "margin"):
            raise InvalidInput(f"measure must be 'entropy' or 'margin', got {self.measure!r}")

    def scores(self, pool: Pool) -> np.ndarray:
        probs = pool.class_probabilities()
        if self.measure == "entropy":
            return entropy(probs)
        if pool.probabilities.ndim == 1 and pool.threshold is not None:
            t = pool.threshold
            return 1.0 - np.abs(pool.positive - t) / max(t, 1 - t)
        two = -np.partition(-probs, 1, axis=1)[:, :2]
        return 1.0 - (two[:, 0] - two[:, 1])

    def select(
        self, pool: Pool, k: int, *, rng: np.random.Generator, exclude: Indices = None
    ) -> list[Choice]:
        cand = _candidates(len(pool), k, exclude)
        chosen, _ = _top(cand, self.scores(pool)[cand], k, rng)
        probs = pool.class_probabilities()[chosen]
        ent = entropy(probs)
        top2 = -np.sort(-probs, axis=1)[:, :2]
        out = []
        for j, i in enumerate(chosen):
            if probs.shape[1] == 2:
                head = f"uncertain: p={probs[j, 1]:.2f}"
            else:
                head = f"uncertain: top classes {top2[j, 0]:.2f} / {top2[j, 1]:.2f}"
            if self.measure == "entropy":
                reason, score = f"{head}, entropy {ent[j]:.2f}", float(ent[j])
            else:
                margin = float(top2[j, 0] - top2[j, 1])
                if probs.shape[1] == 2 and pool.threshold is not None:
                    margin = abs(float(probs[j, 1]) - pool.threshold)
                    reason = f"{head}, {margin:.2f} from the threshold {pool.threshold:g}"
                else:
                    reason = f"{head}, margin {margin:.2f}"
                score = 1.0 - margin
            out.append(Choice(int(i), score, reason))
        return out


def standardise(x: np.ndarray) -> np.ndarray:
    """Columns to zero mean and unit variance (constant columns to 0); NaN becomes 0."""
    x = np.nan_to_num(np.asarray(x, dtype=np.float64))
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def _sq_dist(points: np.ndarray, center: np.ndarray) -> np.ndarray:
    d = points - center
    return np.einsum("ij,ij->i", d, d)


@dataclass(frozen=True)
class Diversity:
    """k-center greedy (Sener & Savarese 2018) on standardised embeddings: each pick is the
    candidate farthest from every labelled item and every earlier pick. With no labelled items
    the first pick is the candidate farthest from the pool's mean. O(candidates * (labelled + k)
    * d); above ``max_candidates`` unlabelled items, a random subsample of that size competes."""

    max_candidates: int = DEFAULT_MAX_CANDIDATES
    name: str = field(default="diversity", init=False)

    def __post_init__(self) -> None:
        if self.max_candidates < 1:
            raise InvalidInput(f"max_candidates must be >= 1, got {self.max_candidates}")

    def select(
        self, pool: Pool, k: int, *, rng: np.random.Generator, exclude: Indices = None
    ) -> list[Choice]:
        if pool.embeddings is None:
            raise InvalidInput("the diversity strategy needs the pool's embeddings")
        cand = _candidates(len(pool), k, exclude)
        subsampled = len(cand) > self.max_candidates
        if subsampled:
            cand = np.sort(rng.choice(cand, self.max_candidates, replace=False))
        k = min(k, len(cand))
        if k == 0:
            return []
        x = standardise(pool.embeddings)
        points = x[cand]
        labelled = np.setdiff1d(np.arange(len(pool)), _candidates(len(pool), 0, exclude))
        nearest = np.full(len(cand), np.inf)
        for start in range(0, len(labelled), 256):  # chunks keep memory at 256 * candidates
            block = x[labelled[start : start + 256]]
            d2 = (
                (points**2).sum(axis=1)[:, None]
                - 2.0 * points @ block.T
                + (block**2).sum(axis=1)[None, :]
            )
            nearest = np.minimum(nearest, np.maximum(d2, 0.0).min(axis=1))
        if not len(labelled):
            nearest = _sq_dist(points, np.zeros(x.shape[1]))
            reference = "the pool's centre"
        else:
            reference = "labelled cases"
        out = []
        note = f", among {len(cand)} sampled candidates" if subsampled else ""
        for _ in range(k):
            j = int(np.argmax(nearest))
            distance = float(np.sqrt(nearest[j]))
            out.append(
                Choice(
                    int(cand[j]),
                    distance,
                    f"far from {reference}: distance {distance:.1f} (k-center{note})",
                )
            )
            nearest = np.minimum(nearest, _sq_dist(points, points[j]))
            nearest[j] = -np.inf  # never picked twice, even among duplicates
            reference = "labelled and chosen cases"
        return out


@dataclass(frozen=True)
class CostAware:
    """Largest expected cost of the current decision being wrong. The decision is positive when
    ``p >= threshold`` if the pool has a threshold, else when it is the cheaper one
    (``p * cost_fn > (1 - p) * cost_fp``); the score is then ``(1 - p) * cost_fp``, otherwise
    ``p * cost_fn``."""

    name: str = field(default="cost", init=False)

    def scores(self, pool: Pool) -> tuple[np.ndarray, np.ndarray]:
        if pool.costs is None:
            raise InvalidInput("the cost strategy needs the pool's costs")
        p = pool.positive
        miss = p * pool.costs.false_negative
        alarm = (1 - p) * np.asarray(pool.costs.false_positive)
        positive = p >= pool.threshold if pool.threshold is not None else miss > alarm
        return np.where(positive, alarm, miss), positive

    def select(
        self, pool: Pool, k: int, *, rng: np.random.Generator, exclude: Indices = None
    ) -> list[Choice]:
        scores, positive = self.scores(pool)
        cand = _candidates(len(pool), k, exclude)
        chosen, s = _top(cand, scores[cand], k, rng)
        p = pool.positive
        return [
            Choice(
                int(i),
                float(v),
                f"expected cost of a wrong decision {v:.2f} "
                f"(p={p[i]:.2f}, decided {'positive' if positive[i] else 'negative'})",
            )
            for i, v in zip(chosen, s, strict=True)
        ]


@dataclass(frozen=True)
class RandomSample:
    name: str = field(default="random", init=False)

    def select(
        self, pool: Pool, k: int, *, rng: np.random.Generator, exclude: Indices = None
    ) -> list[Choice]:
        cand = _candidates(len(pool), k, exclude)
        chosen = rng.choice(cand, min(k, len(cand)), replace=False)
        return [Choice(int(i), 0.0, "random sample") for i in chosen]


@dataclass(frozen=True)
class Hybrid:
    """Random until ``warm_start`` items are labelled (counted by ``exclude``), then
    uncertainty; a batch that straddles the switch is split between the two."""

    warm_start: int = 200
    measure: Literal["entropy", "margin"] = "entropy"
    name: str = field(default="hybrid", init=False)

    def __post_init__(self) -> None:
        if self.warm_start < 0:
            raise InvalidInput(f"warm_start must be >= 0, got {self.warm_start}")

    def select(
        self, pool: Pool, k: int, *, rng: np.random.Generator, exclude: Indices = None
    ) -> list[Choice]:
        done = 0 if exclude is None else len(np.unique(np.asarray(exclude, dtype=np.int64)))
        n_random = min(k, max(0, self.warm_start - done))
        first = RandomSample().select(pool, n_random, rng=rng, exclude=exclude)
        taken = [c.index for c in first]
        excluded = np.concatenate(
            [
                np.asarray(exclude if exclude is not None else [], np.int64),
                np.asarray(taken, np.int64),
            ]
        )
        rest = Uncertainty(self.measure).select(pool, k - n_random, rng=rng, exclude=excluded)
        warm = f" (warm start: {self.warm_start} labels)"
        return [Choice(c.index, c.score, c.reason + warm) for c in first] + rest


STRATEGIES: dict[str, Callable[..., Strategy]] = {
    "uncertainty": Uncertainty,
    "diversity": Diversity,
    "cost": CostAware,
    "random": RandomSample,
    "hybrid": Hybrid,
}


def get_strategy(name: str, **options: Any) -> Strategy:
    """A strategy by name; ``options`` go to its constructor (e.g. ``measure="margin"``,
    ``warm_start=300``). Unknown names and options raise :class:`InvalidInput`."""
    factory = STRATEGIES.get(name)
    if factory is None:
        raise InvalidInput(
            f"unknown active-learning strategy {name!r}; known: {', '.join(sorted(STRATEGIES))}",
            {"known": sorted(STRATEGIES)},
        )
    try:
        return factory(**options)
    except TypeError as exc:
        raise InvalidInput(f"bad options for strategy {name!r}: {exc}") from None


_MARGIN = Uncertainty(measure="margin")


def doubt(probability: float, threshold: float) -> Choice:
    """One live prediction's place in a labeling queue: uncertainty by the margin of its
    positive-class ``probability`` to the decision ``threshold`` (score in [0, 1], 1 on the
    threshold), with the reason shown next to it."""
    t = min(max(float(threshold), 1e-6), 1 - 1e-6)
    pool = Pool(np.array([min(max(float(probability), 0.0), 1.0)]), threshold=t)
    # one candidate: the generator never decides anything
    (choice,) = _MARGIN.select(pool, 1, rng=np.random.default_rng(0))
    return choice
