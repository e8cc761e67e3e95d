"""Reference profiles: per watched feature a small sketch of the reference distribution (JSON).

Numeric: quantiles on a 1 % grid with the reference CDF there (KS), decile bins with their shares
(PSI), mean and std (the Wasserstein scale) and a display histogram. Categorical: the shares of
each category. Embedding: mean, covariance and a bounded sample of rows (MMD).

The profile of a model version is written beside its artifacts and registered as its
``reference`` derived artifact with the sha256; :func:`load_reference` opens it only verified.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from verticals.core.db.base import utcnow
from verticals.core.errors import InvalidInput
from verticals.core.monitoring.spec import Columns, WatchedFeature
from verticals.core.registry.derived import derived_artifact, register_derived
from verticals.core.registry.integrity import read_verified
from verticals.core.registry.shipping import install_artifact
from verticals.core.registry.store import ModelVersion

REFERENCE_KIND = "reference"
LEVELS = np.round(np.linspace(0.01, 0.99, 99), 2)
HIST_BINS = 20
EMBEDDING_SAMPLE = 256


class NumericSketch(BaseModel):
    kind: Literal["numeric"] = "numeric"
    count: int
    mean: float
    std: float
    quantiles: list[float]  # at LEVELS
    cdf: list[float]  # reference CDF at each quantile (ties make it exceed the level)
    edges: list[float]  # PSI bin edges (unique deciles)
    shares: list[float]  # len(edges) + 1 bins
    hist_edges: list[float]  # display histogram (0.5 %..99.5 % range)
    hist_shares: list[float]


class CategoricalSketch(BaseModel):
    kind: Literal["categorical"] = "categorical"
    count: int
    shares: dict[str, float]


class EmbeddingSketch(BaseModel):
    kind: Literal["embedding"] = "embedding"
    count: int
    mean: list[float]
    covariance: list[list[float]]
    sample: list[list[float]]


Sketch = Annotated[NumericSketch | CategoricalSketch | EmbeddingSketch, Field(discriminator="kind")]


class ReferenceProfile(BaseModel):
    domain: str
    model: str
    version: str
    created_at: datetime
    features: dict[str, Sketch]


def _finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64).ravel()
    return values[np.isfinite(values)]


def numeric_sketch(values: np.ndarray) -> NumericSketch:
    values = np.sort(_finite(values))
    if len(values) == 0:
        raise InvalidInput("a numeric reference needs at least one finite value")
    quantiles = np.quantile(values, LEVELS)
    cdf = np.searchsorted(values, quantiles, side="right") / len(values)
    edges = np.unique(np.quantile(values, np.linspace(0.1, 0.9, 9)))
    shares = np.bincount(
        np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1
    ) / len(values)
    low, high = np.quantile(values, [0.005, 0.995])
    if high <= low:
        low, high = low - 0.5, high + 0.5
    hist, hist_edges = np.histogram(np.clip(values, low, high), bins=HIST_BINS, range=(low, high))
    return NumericSketch(
        count=len(values),
        mean=float(values.mean()),
        std=float(values.std()),
        quantiles=quantiles.tolist(),
        cdf=cdf.tolist(),
        edges=edges.tolist(),
        shares=shares.tolist(),
        hist_edges=hist_edges.tolist(),
        hist_shares=(hist / len(values)).tolist(),
    )


def categorical_sketch(values: np.ndarray) -> CategoricalSketch:
    labels, counts = np.unique(np.asarray(values).astype(str), return_counts=True)
    if len(labels) == 0:
        raise InvalidInput("a categorical reference needs at least one value")
    total = counts.sum()
    return CategoricalSketch(
        count=int(total),
        shares={str(k): float(c / total) for k, c in zip(labels, counts, strict=True)},
    )


def embedding_sketch(rows: np.ndarray, seed: int = 0) -> EmbeddingSketch:
    rows = np.atleast_2d(np.asarray(rows, dtype=np.float64))
    rows = rows[np.all(np.isfinite(rows), axis=1)]
    if len(rows) < 2:
        raise InvalidInput("an embedding reference needs at least two finite rows")
    rng = np.random.default_rng(seed)
    sample = rows[rng.choice(len(rows), min(EMBEDDING_SAMPLE, len(rows)), replace=False)]
    return EmbeddingSketch(
        count=len(rows),
        mean=rows.mean(axis=0).tolist(),
        covariance=np.atleast_2d(np.cov(rows, rowvar=False)).tolist(),
        sample=sample.tolist(),
    )


def build_profile(
    data: Columns,
    features: tuple[WatchedFeature, ...] | list[WatchedFeature],
    *,
    domain: str,
    model: str,
    version: str,
) -> ReferenceProfile:
    """The profile of ``data`` (a DataFrame or a mapping of columns) for the watched features."""
    sketches: dict[str, NumericSketch | CategoricalSketch | EmbeddingSketch] = {}
    for feature in features:
        if feature.name not in data:
            raise InvalidInput(f"the reference data lacks the watched feature {feature.name!r}")
        column = np.asarray(data[feature.name])
        if feature.kind == "numeric":
            sketches[feature.name] = numeric_sketch(column)
        elif feature.kind == "categorical":
            sketches[feature.name] = categorical_sketch(column)
        else:
            sketches[feature.name] = embedding_sketch(column)
    return ReferenceProfile(
        domain=domain, model=model, version=version, created_at=utcnow(), features=sketches
    )


def store_reference(session: Session, version: ModelVersion, profile: ReferenceProfile) -> None:
    """Write the profile beside the version's artifacts and register it with its sha256."""
    payload = json.dumps(profile.model_dump(mode="json"), separators=(",", ":")).encode()
    path = install_artifact(
        version.domain, version.name, version.version, "reference.json", payload
    )
    register_derived(session, version, REFERENCE_KIND, path)


def load_reference(session: Session, version: ModelVersion) -> ReferenceProfile | None:
    """The registered profile of ``version``, parsed from the very bytes whose sha256 was
    checked (IntegrityError on a mismatch or a missing file); None when none is registered."""
    found = derived_artifact(session, version, REFERENCE_KIND)
    if found is None:
        return None
    payload = read_verified(Path(found.path), found.sha256, what=found.what)
    return ReferenceProfile.model_validate_json(payload)


def as_columns(data: Mapping[str, object]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in data.items()}
