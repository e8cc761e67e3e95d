"""Remaining-useful-life inference: regime normalisation, 1-D CNN and/or boosted trees, a
stratified conformal interval, and out-of-distribution checks.

Everything a model needs travels as bytes: ``rul.weights`` (safetensors), ``rul.xgb`` (XGBoost
UBJ) and ``rul.profile`` (JSON: regimes, normaliser, window, ensemble weights, conformal
quantiles, OOD reference statistics, metrics). No pickle.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, Field
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn
from verticals.core.errors import InvalidInput, ModelUnavailable
from verticals.domains.manufacturing.model.cmapss import (
    READING_COLUMNS,
    SENSOR_COLUMNS,
    SETTING_COLUMNS,
)

PAYLOAD_WEIGHTS = "weights"
PAYLOAD_XGB = "xgb"
PAYLOAD_PROFILE = "profile"
PAYLOAD_FILES = {
    PAYLOAD_WEIGHTS: "rul.weights.safetensors",
    PAYLOAD_XGB: "rul.xgb.ubj",
    PAYLOAD_PROFILE: "rul.profile.json",
}
PROFILE_VERSION = 1
N_READINGS = len(READING_COLUMNS)
N_SETTINGS = len(SETTING_COLUMNS)
# Regime tolerance per operating setting (altitude kft, Mach, throttle angle): rows within it of
# a regime's centre belong to it. C-MAPSS regimes lie >= 5 kft / 0.1 Mach / 20 TRA apart.
DEFAULT_REGIME_TOLERANCE = (1.0, 0.05, 1.0)


class RulEstimate(BaseModel):
    """One engine's estimate: RUL in cycles, its interval, and why it may not be trusted."""

    rul: float = Field(ge=0, allow_inf_nan=False)
    rul_low: float = Field(ge=0, allow_inf_nan=False)
    rul_high: float = Field(ge=0, allow_inf_nan=False)
    interval_level: float = Field(gt=0, lt=1)
    top_sensors: list[str]
    warnings: list[str]
    ood_score: float = Field(ge=0, allow_inf_nan=False)


# ----------------------------------------------------------------------------- preprocessing
def assign_regimes(
    settings: np.ndarray, centers: np.ndarray, tolerance: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest regime of each row and its distance in tolerance units (max over settings)."""
    scaled = np.abs(settings[:, None, :] - centers[None, :, :]) / tolerance[None, None, :]
    distance = scaled.max(axis=2)
    nearest = distance.argmin(axis=1)
    return nearest, distance[np.arange(len(settings)), nearest]


def find_regimes(
    settings: np.ndarray, tolerance: np.ndarray, *, min_share: float = 0.005
) -> np.ndarray:
    """Operating regimes as centres of rows that lie within ``tolerance`` of each other.

    Deterministic leader clustering on the grid of rounded settings, refined by one pass of
    means; regimes holding under ``min_share`` of the rows fold into their nearest neighbour.
    """
    keys = np.round(settings / tolerance).astype(np.int64)
    unique, counts = np.unique(keys, axis=0, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    leaders: list[np.ndarray] = []
    for index in order:
        point = unique[index] * tolerance
        if not any(np.all(np.abs(point - c) <= tolerance * 1.5) for c in leaders):
            leaders.append(point)
    centers = np.asarray(leaders, dtype=np.float64)
    for _ in range(2):
        nearest, _ = assign_regimes(settings, centers, tolerance)
        shares = np.bincount(nearest, minlength=len(centers)) / len(settings)
        keep = shares >= min_share
        centers = np.asarray(
            [settings[nearest == k].mean(axis=0) for k in range(len(centers)) if keep[k]]
        )
    order = np.lexsort(centers.T[::-1])
    return centers[order]


@dataclass
class Normaliser:
    """Per-regime z-normalisation of the sensors kept (those not constant in training)."""

    centers: np.ndarray  # (k, 3)
    tolerance: np.ndarray  # (3,)
    used: list[int]  # indices into READING_COLUMNS
    mean: np.ndarray  # (k, n_used)
    std: np.ndarray  # (k, n_used)

    @classmethod
    def fit(
        cls,
        readings: np.ndarray,
        tolerance: Sequence[float] = DEFAULT_REGIME_TOLERANCE,
        *,
        constant_share: float = 0.95,
    ) -> Normaliser:
        tol = np.asarray(tolerance, dtype=np.float64)
        settings = readings[:, :N_SETTINGS]
        centers = find_regimes(settings, tol)
        regime, _ = assign_regimes(settings, centers, tol)
        used: list[int] = []
        for j in range(N_SETTINGS, N_READINGS):
            constant = 0.0
            for k in range(len(centers)):
                column = readings[regime == k, j]
                _, counts = np.unique(column, return_counts=True)
                constant += counts.max()
            if constant / len(readings) < constant_share:
                used.append(j)
        if not used:
            raise InvalidInput("every sensor is constant in the training data", {"field": "data"})
        mean = np.stack([readings[regime == k][:, used].mean(axis=0) for k in range(len(centers))])
        std = np.stack([readings[regime == k][:, used].std(axis=0) for k in range(len(centers))])
        return cls(centers, tol, used, mean, np.maximum(std, 1e-6))

    def regimes(self, readings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return assign_regimes(readings[:, :N_SETTINGS], self.centers, self.tolerance)

    def transform(self, readings: np.ndarray) -> np.ndarray:
        regime, _ = self.regimes(readings)
        return (readings[:, self.used] - self.mean[regime]) / self.std[regime]

    def to_json(self) -> dict[str, Any]:
        return {
            "centers": self.centers.tolist(),
            "tolerance": self.tolerance.tolist(),
            "used": self.used,
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Normaliser:
        return cls(
            np.asarray(data["centers"], dtype=np.float64),
            np.asarray(data["tolerance"], dtype=np.float64),
            [int(i) for i in data["used"]],
            np.asarray(data["mean"], dtype=np.float64),
            np.asarray(data["std"], dtype=np.float64),
        )


def pad_window(z: np.ndarray, window: int) -> np.ndarray:
    """The last ``window`` rows; a shorter history is front-padded with its first row."""
    if len(z) >= window:
        return z[-window:]
    return np.concatenate([np.repeat(z[:1], window - len(z), axis=0), z], axis=0)


WINDOW_FEATURE_KINDS = (
    "last5",
    "mean",
    "std",
    "slope",
    "slope_all",
    "min",
    "max",
    "drift",
    "ewm",
    "mean60",
)


def window_features(z: np.ndarray, window: int) -> np.ndarray:
    """Boosted-trees features of one z-normalised history, per sensor: the last-5 mean, window
    mean/std/slope/min/max, the slope over the whole history, the drift since the first 20
    cycles (removes each engine's own offset), an exponentially weighted mean of the last 50 and
    the mean of the last 60; then the number of cycles."""
    w = pad_window(z, window)
    t = np.arange(window, dtype=np.float64) - (window - 1) / 2
    slope = (t[:, None] * (w - w.mean(axis=0))).sum(axis=0) / (t**2).sum()
    n = len(z)
    if n >= 3:
        ta = np.arange(n, dtype=np.float64) - (n - 1) / 2
        slope_all = (ta[:, None] * (z - z.mean(axis=0))).sum(axis=0) / (ta**2).sum()
    else:
        slope_all = np.zeros(z.shape[1])
    drift = z[-10:].mean(axis=0) - z[: min(n, 20)].mean(axis=0)
    recent = z[-50:]
    decay = np.exp(np.linspace(-3.0, 0.0, len(recent)))
    ewm = (recent * (decay / decay.sum())[:, None]).sum(axis=0)
    parts = [
        w[-5:].mean(axis=0),
        w.mean(axis=0),
        w.std(axis=0),
        slope * 10,
        slope_all * 100,
        w.min(axis=0),
        w.max(axis=0),
        drift,
        ewm,
        z[-60:].mean(axis=0),
    ]
    return np.concatenate([*parts, [float(n)]])


def feature_names(sensors: Sequence[str]) -> list[str]:
    return [f"{kind}:{s}" for kind in WINDOW_FEATURE_KINDS for s in sensors] + ["n_cycles"]


def trend_features(z: np.ndarray, window: int) -> np.ndarray:
    """What the fault-mode check compares: the last-10 mean and window slope of each sensor."""
    w = pad_window(z, window)
    t = np.arange(window, dtype=np.float64) - (window - 1) / 2
    slope = (t[:, None] * (w - w.mean(axis=0))).sum(axis=0) / (t**2).sum()
    return np.concatenate([w[-10:].mean(axis=0), slope * 10])


# ----------------------------------------------------------------------------------- network
class RulNet(nn.Module):
    """A small 1-D CNN over (batch, window, sensors) → RUL / scale."""

    def __init__(
        self, n_sensors: int, channels: int = 32, kernel: int = 5, dropout: float = 0.2
    ) -> None:
        super().__init__()
        pad = kernel // 2
        self.body = nn.Sequential(
            nn.Conv1d(n_sensors, channels, kernel, padding=pad),
            nn.ReLU(),
            nn.Conv1d(channels, channels, kernel, padding=pad),
            nn.ReLU(),
            nn.Conv1d(channels, channels, kernel, padding=pad),
            nn.ReLU(),
        )
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(2 * channels + 1, 64), nn.ReLU(), nn.Linear(64, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, W, S+1): the last channel is the (scaled) cycle count, constant in the window
        sensors, cycles = x[:, :, :-1], x[:, -1, -1:]
        h = self.body(sensors.transpose(1, 2))
        pooled = torch.cat([h[:, :, -1], h.mean(dim=2), cycles], dim=1)
        return self.head(pooled).squeeze(1)


CYCLE_SCALE = 200.0


def cnn_input(z: np.ndarray, window: int) -> np.ndarray:
    """(window, 2 n_used + 1): the padded window, the same minus the engine's own baseline (mean
    of its first 20 cycles: removes manufacturing offsets), and the history length channel."""
    w = pad_window(z, window)
    baseline = z[: min(len(z), 20)].mean(axis=0)
    cycles = np.full((window, 1), len(z) / CYCLE_SCALE)
    return np.concatenate([w, w - baseline, cycles], axis=1).astype(np.float32)


# ------------------------------------------------------------------------------- conformal
@dataclass
class Conformal:
    """Stratified split-conformal interval: per predicted-RUL bin, the (lower, upper) quantiles
    of ``true - predicted`` on calibration engines; histories shorter than the window widen by
    ``short_factor``."""

    level: float
    edges: list[float]  # inner bin edges on the prediction
    lower: list[float]  # per bin, quantile (1-level)/2 of residual (negative)
    upper: list[float]  # per bin, quantile (1+level)/2 of residual
    short_factor: float = 1.5

    def interval(self, pred: np.ndarray, short: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        b = np.searchsorted(np.asarray(self.edges), pred, side="right")
        lo = np.asarray(self.lower)[b]
        hi = np.asarray(self.upper)[b]
        factor = np.where(short, self.short_factor, 1.0)
        return np.maximum(pred + lo * factor, 0.0), np.maximum(pred + hi * factor, 0.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "edges": self.edges,
            "lower": self.lower,
            "upper": self.upper,
            "short_factor": self.short_factor,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Conformal:
        return cls(
            float(data["level"]),
            [float(x) for x in data["edges"]],
            [float(x) for x in data["lower"]],
            [float(x) for x in data["upper"]],
            float(data["short_factor"]),
        )


def conformal_quantile(residuals: np.ndarray, q: float, weights: np.ndarray | None = None) -> float:
    """Weighted quantile with the split-conformal finite-sample correction."""
    r = np.asarray(residuals, dtype=np.float64)
    w = np.ones_like(r) if weights is None else np.asarray(weights, dtype=np.float64)
    order = np.argsort(r, kind="stable")
    r, w = r[order], w[order]
    n_eff = w.sum() ** 2 / (w**2).sum()
    q_adj = min(1.0, q * (n_eff + 1) / n_eff) if q > 0.5 else max(0.0, q - (1 - q) / n_eff)
    cum = np.cumsum(w) / w.sum()
    return float(r[min(len(r) - 1, int(np.searchsorted(cum, q_adj, side="left")))])


# -------------------------------------------------------------------------------------- OOD
@dataclass
class OodReference:
    """Reference of the training fault mode and operating regimes.

    Trend check: in the training fault mode the sensors drift together along one path. The
    trend features (last-10 mean and window slope per sensor) are projected on their first
    principal component (a health index ``h``); a cubic in ``h`` predicts every feature, and the
    Mahalanobis distance of what the cubic does not explain, over ``trend_threshold``, is the
    trend score. A sensor drifting the wrong way leaves a large residual at any stage of wear.
    """

    regime_max_distance: float  # tolerance units; rows beyond it are outside every regime
    max_outside_share: float  # an engine with more rows outside is flagged
    trend_mean: np.ndarray  # (d,)
    trend_axis: np.ndarray  # (d,) first principal component
    trend_coef: np.ndarray  # (degree + 1, d): feature ~ sum_k coef[k] h^k
    trend_precision: np.ndarray  # (d, d) of the residuals
    trend_threshold: float

    def health_index(self, feats: np.ndarray) -> np.ndarray:
        return (feats - self.trend_mean) @ self.trend_axis

    def trend_distance(self, feats: np.ndarray) -> np.ndarray:
        h = self.health_index(feats)
        powers = np.stack([h**k for k in range(len(self.trend_coef))], axis=1)
        d = feats - powers @ self.trend_coef
        return np.sqrt(np.einsum("ij,jk,ik->i", d, self.trend_precision, d))

    @classmethod
    def fit(cls, feats: np.ndarray, degree: int = 3) -> OodReference:
        mean = feats.mean(axis=0)
        _, _, vt = np.linalg.svd(feats - mean, full_matrices=False)
        axis = vt[0] if vt[0].sum() >= 0 else -vt[0]
        h = (feats - mean) @ axis
        powers = np.stack([h**k for k in range(degree + 1)], axis=1)
        coef, *_ = np.linalg.lstsq(powers, feats, rcond=None)
        residual = feats - powers @ coef
        cov = np.cov(residual, rowvar=False)
        cov = cov + 0.05 * np.eye(len(cov)) * np.trace(cov) / len(cov)  # shrinkage
        return cls(1.0, 0.05, mean, axis, coef, np.linalg.inv(cov), 1.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "regime_max_distance": self.regime_max_distance,
            "max_outside_share": self.max_outside_share,
            "trend_mean": self.trend_mean.tolist(),
            "trend_axis": self.trend_axis.tolist(),
            "trend_coef": self.trend_coef.tolist(),
            "trend_precision": self.trend_precision.tolist(),
            "trend_threshold": self.trend_threshold,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OodReference:
        return cls(
            float(data["regime_max_distance"]),
            float(data["max_outside_share"]),
            np.asarray(data["trend_mean"], dtype=np.float64),
            np.asarray(data["trend_axis"], dtype=np.float64),
            np.asarray(data["trend_coef"], dtype=np.float64),
            np.asarray(data["trend_precision"], dtype=np.float64),
            float(data["trend_threshold"]),
        )


# ------------------------------------------------------------------------------------- model
@dataclass
class RulModel:
    """A trained RUL estimator. ``weights`` maps "cnn"/"xgb" to ensemble weights (sum 1)."""

    normaliser: Normaliser
    window: int
    cap: float
    weights: dict[str, float]
    conformal: Conformal
    ood: OodReference
    net: RulNet | None = None
    net_config: dict[str, Any] = field(default_factory=dict)
    booster: Any = None  # xgboost.Booster
    metrics: dict[str, Any] = field(default_factory=dict)
    min_history: int = 5

    @property
    def used_sensors(self) -> list[str]:
        return [READING_COLUMNS[i] for i in self.normaliser.used]

    # ---------------------------------------------------------------------------- inputs
    def _check(self, history: np.ndarray, index: int) -> np.ndarray:
        h = np.asarray(history, dtype=np.float64)
        if h.ndim != 2 or h.shape[1] != N_READINGS:
            raise InvalidInput(
                f"history {index}: expected shape (n_cycles, {N_READINGS}), got {h.shape}",
                {"index": index},
            )
        if len(h) == 0:
            raise InvalidInput(f"history {index} has no cycles", {"index": index})
        if not np.isfinite(h).all():
            raise InvalidInput(f"history {index} holds non-finite values", {"index": index})
        return h

    def sensor_zscores(self, history: np.ndarray) -> np.ndarray:
        """(n_cycles, n_used_sensors): each reading z-normalised within its operating regime."""
        return self.normaliser.transform(self._check(history, 0))

    # --------------------------------------------------------------------------- predict
    def _predict_cnn(self, zs: Sequence[np.ndarray]) -> np.ndarray:
        assert self.net is not None
        x = torch.from_numpy(np.stack([cnn_input(z, self.window) for z in zs]))
        self.net.eval()
        with torch.no_grad():
            out = self.net(x).numpy().astype(np.float64)
        return out * self.cap

    def _predict_xgb(self, zs: Sequence[np.ndarray]) -> np.ndarray:
        import xgboost

        feats = np.stack([window_features(z, self.window) for z in zs])
        return self.booster.predict(xgboost.DMatrix(feats)).astype(np.float64)

    def point_predictions(self, zs: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """Each component's prediction (cycles, clipped to [0, cap]) of normalised histories."""
        out: dict[str, np.ndarray] = {}
        if self.weights.get("cnn", 0) > 0:
            out["cnn"] = np.clip(self._predict_cnn(zs), 0, self.cap)
        if self.weights.get("xgb", 0) > 0:
            out["xgb"] = np.clip(self._predict_xgb(zs), 0, self.cap)
        return out

    def blend(self, parts: Mapping[str, np.ndarray]) -> np.ndarray:
        return sum(self.weights[k] * v for k, v in parts.items())  # type: ignore[return-value]

    def predict(self, histories: Sequence[np.ndarray]) -> list[RulEstimate]:
        """One estimate per history ((n_cycles, 24) in READING_COLUMNS order, ascending)."""
        if len(histories) == 0:
            return []
        hs = [self._check(h, i) for i, h in enumerate(histories)]
        zs = [self.normaliser.transform(h) for h in hs]
        pred = self.blend(self.point_predictions(zs))
        lengths = np.array([len(h) for h in hs])
        short = lengths < self.window
        low, high = self.conformal.interval(pred, short)
        low, high = np.minimum(low, pred), np.maximum(high, pred)
        trend = self.ood.trend_distance(np.stack([trend_features(z, self.window) for z in zs]))
        used = self.used_sensors
        estimates = []
        for i, (h, z) in enumerate(zip(hs, zs, strict=True)):
            _, dist = self.normaliser.regimes(h)
            outside = float((dist > self.ood.regime_max_distance).mean())
            regime_score = outside / self.ood.max_outside_share
            trend_score = float(trend[i] / self.ood.trend_threshold)
            warnings: list[str] = []
            if regime_score > 1:
                warnings.append(
                    f"operating settings outside the training regimes in {outside:.0%} of cycles "
                    "(unit looks like another operating condition): RUL not reliable"
                )
            elif trend_score > 1:
                warnings.append(
                    "sensor trends unlike the training fault mode "
                    f"(trend distance {trend_score:.1f}x the reference limit): RUL not reliable"
                )
            if len(h) < self.min_history:
                warnings.append(
                    f"only {len(h)} cycles of history: too short for an estimate, interval is "
                    "indicative only"
                )
            elif short[i]:
                warnings.append(
                    f"only {len(h)} cycles of history (window {self.window}): padded, "
                    f"interval widened x{self.conformal.short_factor:g}"
                )
            recent = np.abs(z[-min(len(z), 10) :].mean(axis=0))
            top = [used[j] for j in np.argsort(-recent, kind="stable")[:3]]
            estimates.append(
                RulEstimate(
                    rul=float(max(pred[i], 0.0)),
                    rul_low=float(low[i]),
                    rul_high=float(high[i]),
                    interval_level=self.conformal.level,
                    top_sensors=top,
                    warnings=warnings,
                    ood_score=float(max(regime_score, trend_score, 0.0)),
                )
            )
        return estimates

    # -------------------------------------------------------------------------- payloads
    def profile(self) -> dict[str, Any]:
        return {
            "version": PROFILE_VERSION,
            "reading_columns": list(READING_COLUMNS),
            "sensor_columns": list(SENSOR_COLUMNS),
            "normaliser": self.normaliser.to_json(),
            "window": self.window,
            "cap": self.cap,
            "weights": self.weights,
            "conformal": self.conformal.to_json(),
            "ood": self.ood.to_json(),
            "net_config": self.net_config,
            "min_history": self.min_history,
            "metrics": self.metrics,
        }

    def to_payloads(self) -> dict[str, bytes]:
        payloads = {PAYLOAD_PROFILE: json.dumps(self.profile(), indent=1).encode()}
        if self.net is not None:
            state = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
            payloads[PAYLOAD_WEIGHTS] = save_safetensors(state)
        if self.booster is not None:
            payloads[PAYLOAD_XGB] = bytes(self.booster.save_raw(raw_format="ubj"))
        return payloads

    @classmethod
    def from_payloads(cls, payloads: Mapping[str, bytes]) -> RulModel:
        if PAYLOAD_PROFILE not in payloads:
            raise ModelUnavailable("RUL model payloads lack the profile")
        try:
            profile = json.loads(payloads[PAYLOAD_PROFILE])
        except (ValueError, UnicodeDecodeError) as exc:
            raise ModelUnavailable(f"RUL profile is not valid JSON: {exc}") from exc
        if profile.get("version") != PROFILE_VERSION:
            raise ModelUnavailable(f"RUL profile version {profile.get('version')} unsupported")
        weights = {k: float(v) for k, v in profile["weights"].items()}
        normaliser = Normaliser.from_json(profile["normaliser"])
        net = None
        if weights.get("cnn", 0) > 0:
            if PAYLOAD_WEIGHTS not in payloads:
                raise ModelUnavailable("RUL model payloads lack the CNN weights")
            net = RulNet(2 * len(normaliser.used), **profile["net_config"])
            net.load_state_dict(load_safetensors(payloads[PAYLOAD_WEIGHTS]))
            net.eval()
        booster = None
        if weights.get("xgb", 0) > 0:
            if PAYLOAD_XGB not in payloads:
                raise ModelUnavailable("RUL model payloads lack the XGBoost model")
            from verticals.core.training.xgb import load_booster

            booster = load_booster(bytes(payloads[PAYLOAD_XGB]), nthread=2, device="cpu")
        return cls(
            normaliser=normaliser,
            window=int(profile["window"]),
            cap=float(profile["cap"]),
            weights=weights,
            conformal=Conformal.from_json(profile["conformal"]),
            ood=OodReference.from_json(profile["ood"]),
            net=net,
            net_config=dict(profile["net_config"]),
            booster=booster,
            metrics=dict(profile.get("metrics", {})),
            min_history=int(profile["min_history"]),
        )
