"""XGBoost helpers: device pick (CUDA when present), ``hist`` training with early stopping, and
saving/loading in XGBoost's own JSON/UBJ formats (never pickle).

Domain-free: callers pass feature matrices, labels and names. Example::

    params = XGBParams(max_depth=6, learning_rate=0.1, n_rounds=400, early_stopping_rounds=30)
    result = train_booster(X, y, params, eval_set=(Xv, yv), feature_names=names)
    save_booster(result.booster, Path("model.ubj"), attributes={"calibration": "..."})
    booster = load_booster(Path("model.ubj"))
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    import xgboost as xgb

MODEL_SUFFIXES = (".json", ".ubj")
INSTALL_HINT = "XGBoost is not installed: pip install 'verticals[cpu]' (or [gpu] for CUDA)"


def _xgb() -> Any:
    try:
        import xgboost
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(INSTALL_HINT) from exc
    return xgboost


def cuda_available() -> bool:
    """True when this XGBoost build has CUDA and a CUDA device is visible."""
    xgboost = _xgb()
    try:
        if not xgboost.build_info().get("USE_CUDA"):
            return False
    except Exception:  # noqa: BLE001 - builds without build_info: no CUDA
        return False
    if importlib.util.find_spec("torch") is not None:
        import torch

        return bool(torch.cuda.is_available())
    return False


def pick_device(requested: Literal["auto", "cpu", "cuda"] = "auto") -> str:
    """``"cuda"`` where present (or demanded), else ``"cpu"``. Demanding CUDA without it fails."""
    if requested not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {requested!r}")
    if requested == "cpu":
        return "cpu"
    has_cuda = cuda_available()
    if requested == "cuda" and not has_cuda:
        raise ValueError("device='cuda' was requested but no CUDA-enabled XGBoost/GPU is present")
    return "cuda" if has_cuda else "cpu"


class XGBParams(BaseModel):
    """Hyperparameters of one binary-classification booster (``hist`` tree method)."""

    max_depth: int = Field(6, ge=1, le=20)
    learning_rate: float = Field(0.1, gt=0, le=1)
    n_rounds: int = Field(400, ge=1, le=20_000)
    early_stopping_rounds: int | None = Field(30, ge=1)
    subsample: float = Field(0.8, gt=0, le=1)
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    min_child_weight: float = Field(1.0, ge=0)
    reg_lambda: float = Field(1.0, ge=0)
    max_bin: int = Field(256, ge=2)
    scale_pos_weight: float = Field(1.0, gt=0)
    eval_metric: str = "aucpr"
    objective: str = "binary:logistic"
    seed: int = 0
    nthread: int = Field(2, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"

    def booster_params(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "eval_metric": self.eval_metric,
            "tree_method": "hist",
            "device": pick_device(self.device),
            "max_depth": self.max_depth,
            "learning_rate": self.learning_rate,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "min_child_weight": self.min_child_weight,
            "reg_lambda": self.reg_lambda,
            "max_bin": self.max_bin,
            "scale_pos_weight": self.scale_pos_weight,
            "seed": self.seed,
            "nthread": self.nthread,
        }


@dataclass
class TrainResult:
    booster: xgb.Booster
    best_iteration: int
    best_score: float | None
    seconds: float
    device: str
    history: dict[str, list[float]] = field(default_factory=dict)


def _check_matrix(name: str, X: np.ndarray, y: np.ndarray | None) -> None:
    if X.ndim != 2:
        raise ValueError(f"{name}: X must be 2-D (rows, features), got shape {X.shape}")
    if y is not None and len(y) != len(X):
        raise ValueError(f"{name}: {len(X)} rows but {len(y)} labels")
    if np.isinf(X).any():
        raise ValueError(f"{name}: X holds inf (NaN is allowed and means missing)")


def _progress_callback(
    on_round: Callable[[int, dict[str, float]], None],
) -> xgb.callback.TrainingCallback:
    """An XGBoost callback that reports each round's latest metrics to ``on_round``."""
    from xgboost.callback import TrainingCallback  # lazily, like _xgb()

    class _Progress(TrainingCallback):
        def after_iteration(
            self, model: Any, epoch: int, evals_log: TrainingCallback.EvalsLog
        ) -> bool:
            latest = {}
            for data, metrics in evals_log.items():
                for metric, values in metrics.items():
                    last = values[-1]  # a (mean, std) pair in cross-validation
                    latest[f"{data}-{metric}"] = float(last[0] if isinstance(last, tuple) else last)
            on_round(epoch, latest)
            return False

    return _Progress()


def train_booster(
    X: np.ndarray,
    y: np.ndarray,
    params: XGBParams,
    *,
    eval_set: tuple[np.ndarray, np.ndarray] | None = None,
    feature_names: Sequence[str] | None = None,
    on_round: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train with ``hist``; with ``eval_set`` stop early on its ``eval_metric`` (the last
    metric listed is the one watched). ``on_round(i, {"metric": value})`` reports progress."""
    xgboost = _xgb()
    _check_matrix("train", X, y)
    names = list(feature_names) if feature_names is not None else None
    booster_params = params.booster_params()
    dtrain = xgboost.QuantileDMatrix(X, label=y, feature_names=names, max_bin=params.max_bin)
    evals = []
    if eval_set is not None:
        Xv, yv = eval_set
        _check_matrix("eval", Xv, yv)
        dval = xgboost.DMatrix(Xv, label=yv, feature_names=names)
        evals = [(dval, "eval")]
    history: dict[str, dict[str, list[float]]] = {}
    callbacks: list[Any] = []
    if on_round is not None:
        callbacks.append(_progress_callback(on_round))
    started = time.perf_counter()
    booster = xgboost.train(
        booster_params,
        dtrain,
        num_boost_round=params.n_rounds,
        evals=evals,
        evals_result=history,
        early_stopping_rounds=params.early_stopping_rounds if evals else None,
        callbacks=callbacks,
        verbose_eval=False,
    )
    seconds = time.perf_counter() - started
    best_iteration = getattr(booster, "best_iteration", None)
    best_score = getattr(booster, "best_score", None)
    if best_iteration is None or not evals:
        best_iteration = booster.num_boosted_rounds() - 1
    flat = {f"{d}-{m}": list(map(float, v)) for d, ms in history.items() for m, v in ms.items()}
    return TrainResult(
        booster=booster,
        best_iteration=int(best_iteration),
        best_score=float(best_score) if best_score is not None else None,
        seconds=seconds,
        device=booster_params["device"],
        history=flat,
    )


def _check_suffix(path: Path) -> None:
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise ValueError(
            f"XGBoost models are saved as {' or '.join(MODEL_SUFFIXES)} only (no pickle); "
            f"got {path.name!r}"
        )


def save_booster(
    booster: xgb.Booster, path: Path, *, attributes: dict[str, str] | None = None
) -> Path:
    """Save in XGBoost's JSON or UBJ format (by suffix). ``attributes`` (strings) travel inside
    the model file, so one sha256 covers them too."""
    path = Path(path)
    _check_suffix(path)
    if attributes:
        bad = [k for k, v in attributes.items() if not isinstance(v, str)]
        if bad:
            raise ValueError(f"attributes must be strings: {bad}")
        booster.set_attr(**attributes)
    path.parent.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(path))
    return path


def load_booster(
    path: Path | bytes, *, nthread: int | None = None, device: str = "auto"
) -> xgb.Booster:
    """Load a JSON/UBJ model; refuses other formats. Check the sha256 before calling this.

    ``path`` may be the model file's bytes (JSON or UBJ, told apart by XGBoost from the content),
    e.g. from the verifying loader's ``read_verified``: what is loaded is then what was checked.
    """
    xgboost = _xgb()
    booster = xgboost.Booster()
    if isinstance(path, bytes | bytearray):
        booster.load_model(bytearray(path))
    else:
        path = Path(path)
        _check_suffix(path)
        if not path.is_file():
            raise FileNotFoundError(path)
        booster.load_model(str(path))
    config: dict[str, Any] = {"device": pick_device(device)}  # type: ignore[arg-type]
    if nthread is not None:
        config["nthread"] = nthread
    booster.set_param(config)
    return booster


def booster_json_attribute(booster: xgb.Booster, key: str) -> Any:
    value = booster.attr(key)
    if value is None:
        raise KeyError(f"model has no attribute {key!r}")
    return json.loads(value)
