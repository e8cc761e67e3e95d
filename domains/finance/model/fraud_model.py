"""The fraud model as served: an XGBoost booster plus what it needs, all inside one model file.

The booster's attribute ``verticals_finance`` (JSON) holds the feature names and feature config it
was trained with and its calibration (Platt scaling on the margin: ``p = sigmoid(a*m + b)``), so
one sha256 covers everything that shapes a prediction.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field
from verticals.core.training.xgb import load_booster, save_booster
from verticals.domains.finance.model.features import feature_names
from verticals.domains.finance.settings import FeatureConfig

META_KEY = "verticals_finance"


class Calibration(BaseModel):
    a: float = 1.0
    b: float = 0.0

    def apply(self, margin: np.ndarray) -> np.ndarray:
        z = self.a * np.asarray(margin, dtype=np.float64) + self.b
        return 1.0 / (1.0 + np.exp(-z))


class ModelMeta(BaseModel):
    feature_names: list[str]
    used_features: list[str]
    feature_config: dict[str, Any]
    calibration: Calibration = Field(default_factory=Calibration)
    params: dict[str, Any] = Field(default_factory=dict)


def fit_platt(margin: np.ndarray, labels: np.ndarray, iterations: int = 50) -> Calibration:
    """Logistic regression of labels on the margin (Newton's method, tiny ridge)."""
    m = np.asarray(margin, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    a, b = 1.0, 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(a * m + b)))
        w = p * (1 - p) + 1e-12
        g = np.array([np.sum((p - y) * m), np.sum(p - y)]) + 1e-6 * np.array([a - 1.0, 0.0])
        h = np.array(
            [[np.sum(w * m * m) + 1e-6, np.sum(w * m)], [np.sum(w * m), np.sum(w) + 1e-9]]
        )
        step = np.linalg.solve(h, g)
        a, b = a - step[0], b - step[1]
        if np.max(np.abs(step)) < 1e-9:
            break
    if not (math.isfinite(a) and math.isfinite(b)) or a <= 0:
        return Calibration()
    return Calibration(a=float(a), b=float(b))


class FraudModel:
    """Calibrated fraud probabilities and per-feature contributions for feature rows.

    ``X`` is float64 (rows, len(features.feature_names(cfg))): every feature this release
    computes, whatever the model was trained with; the booster sees its ``used_features``, picked
    by name, so a model trained before features were added keeps working.
    """

    def __init__(
        self, booster: Any, meta: ModelMeta, version: str = "", nthread: int = 1
    ) -> None:
        self.booster = booster
        self.nthread = nthread
        self.meta = meta
        self.version = version
        self.feature_names = feature_names(self.feature_config)
        index = {n: i for i, n in enumerate(self.feature_names)}
        unknown = [n for n in meta.used_features if n not in index]
        if unknown:
            raise ValueError(f"the model uses features this release does not compute: {unknown}")
        self.columns = [index[n] for n in meta.used_features]

    @property
    def feature_config(self) -> FeatureConfig:
        cfg = self.meta.feature_config
        return FeatureConfig(
            windows_days=tuple(cfg["windows_days"]), label_delay_days=cfg["label_delay_days"]
        )

    def _dmatrix(self, X: np.ndarray) -> Any:
        import xgboost

        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise ValueError(f"expected (rows, {len(self.feature_names)}) features, got {X.shape}")
        # No feature names: the columns are picked in the booster's order right here, and
        # XGBoost's per-call name checks cost more Python than a small batch's whole prediction.
        return xgboost.DMatrix(X[:, self.columns], nthread=self.nthread)

    def booster_rows(self, X: np.ndarray) -> np.ndarray:
        """The columns of feature rows ``X`` the booster reads, in its order (float32)."""
        return np.ascontiguousarray(np.asarray(X)[:, self.columns], dtype=np.float32)

    def margin(self, X: np.ndarray) -> np.ndarray:
        return self.booster.predict(self._dmatrix(X), output_margin=True, validate_features=False)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Calibrated fraud probabilities, shape (rows,)."""
        return self.meta.calibration.apply(self.margin(X))

    def predict_with_contributions(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (rows,) and margin contributions (rows, used features) from XGBoost's
        native ``pred_contribs`` (the bias column dropped)."""
        dmat = self._dmatrix(X)
        contribs = self.booster.predict(dmat, pred_contribs=True, validate_features=False)
        margin = contribs.sum(axis=1)
        return self.meta.calibration.apply(margin), contribs[:, :-1]

    @classmethod
    def load(cls, path: Path | bytes, version: str = "", nthread: int = 1) -> FraudModel:
        """From a model file, or its bytes (as the verifying loader's ``read_verified`` returns)."""
        booster = load_booster(path, nthread=nthread)
        raw = booster.attr(META_KEY)
        if raw is None:
            what = "the model" if isinstance(path, bytes | bytearray) else str(path)
            raise ValueError(f"{what} is not a verticals finance model (no {META_KEY} attribute)")
        return cls(booster, ModelMeta.model_validate_json(raw), version, nthread=nthread)

    def save(self, path: Path) -> Path:
        return save_booster(
            self.booster, path, attributes={META_KEY: json.dumps(self.meta.model_dump(mode="json"))}
        )
