"""XGBoost → ONNX, kept only where ONNX Runtime is faster than XGBoost's own prediction.

onnxmltools' ``convert_xgboost`` (target opset ≤ 15 for the ai.onnx domain, ``ai.onnx.ml`` 3)
turns a Booster into a ``TreeEnsembleClassifier``/``Regressor`` graph. Both paths are timed on
the same rows; the report says which one serving should use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel
from verticals.core.compression import measure
from verticals.core.compression.report import CompressionReport, VariantReport
from verticals.core.compression.target import MetricFn
from verticals.core.errors import IntegrityError
from verticals.core.registry.gate import MetricGate

if TYPE_CHECKING:
    import xgboost

MAX_OPSET = 15


class TreeComparison(BaseModel):
    """Latencies in ms (median); ``use_onnx`` when ONNX wins at every measured batch size."""

    onnx_path: str
    onnx_bytes: int
    native_bytes: int | None = None
    max_abs_diff: float
    native_ms: dict[int, float]
    onnx_ms: dict[int, float]
    use_onnx: bool
    reason: str


def xgboost_to_onnx(
    booster: xgboost.Booster | xgboost.XGBModel,
    n_features: int,
    path: Path,
    *,
    opset: int = MAX_OPSET,
) -> Path:
    """Convert ``booster`` (xgboost.Booster or sklearn wrapper) to an ONNX file at ``path``.

    Input ``input``: float32 ``[batch, n_features]``. A binary classifier's graph returns labels
    and ``[batch, 2]`` probabilities; a regressor returns ``[batch, 1]``."""
    if opset > MAX_OPSET:
        raise ValueError(f"onnxmltools' convert_xgboost supports opset <= {MAX_OPSET}, got {opset}")
    try:
        from onnxmltools import convert_xgboost
        from onnxmltools.convert.common.data_types import FloatTensorType
    except ImportError as exc:  # pragma: no cover
        raise ImportError(
            "XGBoost → ONNX needs onnxmltools: pip install onnxmltools==1.16.0"
        ) from exc
    if hasattr(booster, "get_booster"):
        booster = booster.get_booster()
    if booster.feature_names is not None:  # the converter only reads names of the form f<i>
        booster = booster.copy()
        booster.feature_names = None
        booster.feature_types = None
    model = convert_xgboost(
        booster,
        initial_types=[("input", FloatTensorType([None, n_features]))],
        target_opset=opset,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path


def _positive_scores(outputs: list[np.ndarray]) -> np.ndarray:
    """The positive-class probability (classifier) or the prediction (regressor), ``[N]``."""
    scores = outputs[-1] if len(outputs) > 1 else outputs[0]
    if isinstance(scores, list):  # ZipMap output: list of {label: prob}
        scores = np.array([[row[k] for k in sorted(row)] for row in scores])
    scores = np.asarray(scores, dtype=np.float64)
    return scores[:, -1] if scores.ndim == 2 else scores


def compare_xgboost(
    booster: xgboost.Booster | xgboost.XGBModel,
    rows: np.ndarray,
    out_dir: Path,
    *,
    batch_sizes: tuple[int, ...] = (1, 32, 1024),
    atol: float = 1e-4,
    budget_s: float = 1.0,
    native_path: Path | None = None,
) -> TreeComparison:
    """Convert, check numerics against ``booster.inplace_predict`` on ``rows`` (float32
    ``[N, n_features]``), and time both at each batch size on CPU."""
    from verticals.core.serving.runtime import CPU, RuntimeOptions, create_session

    raw = booster.get_booster() if hasattr(booster, "get_booster") else booster
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    path = xgboost_to_onnx(raw, rows.shape[1], out_dir / "model.onnx")
    session = create_session(path, RuntimeOptions(providers=[CPU], warmup_runs=1))

    def native(x: np.ndarray) -> np.ndarray:
        return np.asarray(raw.inplace_predict(x, validate_features=False))

    def onnx(x: np.ndarray) -> np.ndarray:
        return _positive_scores(session.run_all(x))

    sample = rows[: max(batch_sizes)]
    diff = float(np.max(np.abs(onnx(sample) - native(sample).reshape(len(sample), -1)[:, -1])))
    if not diff <= atol:
        raise IntegrityError(
            f"XGBoost ONNX conversion differs by {diff:.2e} (> {atol:.0e})",
            {"max_abs_diff": diff},
        )
    native_ms, onnx_ms = {}, {}
    for n in batch_sizes:
        x = np.resize(rows, (n, rows.shape[1])).astype(np.float32)
        native_ms[n] = round(measure.latency_ms(native, x, budget_s=budget_s), 4)
        onnx_ms[n] = round(measure.latency_ms(onnx, x, budget_s=budget_s), 4)
    wins = [n for n in batch_sizes if onnx_ms[n] < native_ms[n]]
    use_onnx = len(wins) == len(batch_sizes)
    reason = (
        "ONNX Runtime faster at every batch size"
        if use_onnx
        else f"native XGBoost faster or equal at batch sizes "
        f"{[n for n in batch_sizes if n not in wins]}: keep the native model"
    )
    return TreeComparison(
        onnx_path=str(path),
        onnx_bytes=path.stat().st_size,
        native_bytes=native_path.stat().st_size if native_path else None,
        max_abs_diff=diff,
        native_ms=native_ms,
        onnx_ms=onnx_ms,
        use_onnx=use_onnx,
        reason=reason,
    )


@dataclass
class TreeCompressionTarget(MetricGate):
    """What a domain provides to compress a gradient-boosted tree model.

    Attributes:
        name: ``"<domain>/<model>"``.
        booster: the fitted ``xgboost.Booster`` (or its sklearn wrapper).
        rows: float32 ``[N, n_features]`` feature rows for numerics checks and timing.
        metric: ``metric(predict) -> (value, name)`` on the validation split, where ``predict``
            maps float32 feature rows to positive-class scores ``[N]``.
        version: the registry version of ``booster``, if any.
        max_metric_drop: tolerance stored with each variant.
    """

    name: str
    booster: Any
    rows: np.ndarray
    metric: MetricFn
    version: str | None = None
    higher_is_better: bool = True
    max_metric_drop: float = 0.005

    def __post_init__(self) -> None:
        self._check_gate()


def compress_trees(
    target: TreeCompressionTarget, out_dir: Path, *, budget_s: float = 1.0
) -> CompressionReport:
    """The native model against its ONNX conversion: bytes, CPU latency at batch 1 and 32, the
    metric; the ONNX variant's notes say whether serving should switch to it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = target.booster.get_booster() if hasattr(target.booster, "get_booster") else target.booster
    native_path = out_dir / "xgboost-native.ubj"
    raw.save_model(str(native_path))
    comparison = compare_xgboost(
        raw, target.rows, out_dir, batch_sizes=(1, 32), budget_s=budget_s, native_path=native_path
    )
    from verticals.core.serving.runtime import CPU, RuntimeOptions, create_session

    session = create_session(
        Path(comparison.onnx_path), RuntimeOptions(providers=[CPU], warmup_runs=1)
    )
    baseline, metric_name = target.metric(
        lambda x: np.asarray(raw.inplace_predict(x, validate_features=False)).reshape(len(x), -1)[
            :, -1
        ]
    )
    onnx_metric, _ = target.metric(lambda x: _positive_scores(session.run_all(x)))
    drop = target.metric_drop(baseline, onnx_metric)
    variants = [
        VariantReport(
            name="xgboost-native",
            bytes=comparison.native_bytes or 0,
            latency_ms_b1=comparison.native_ms[1],
            latency_ms_b32=comparison.native_ms[32],
            metric=baseline,
            metric_name=metric_name,
            metric_drop=0.0,
            within_tolerance=True,
            format="xgboost-ubj",
            path=str(native_path),
            notes="XGBoost inplace_predict",
        ),
        VariantReport(
            name="onnx-fp32",
            bytes=comparison.onnx_bytes,
            latency_ms_b1=comparison.onnx_ms[1],
            latency_ms_b32=comparison.onnx_ms[32],
            metric=onnx_metric,
            metric_name=metric_name,
            metric_drop=drop,
            within_tolerance=drop <= target.max_metric_drop,
            path=comparison.onnx_path,
            notes=("use it: " if comparison.use_onnx else "not used: ") + comparison.reason,
        ),
    ]
    return CompressionReport(
        model=target.name,
        version=target.version,
        metric_name=metric_name,
        baseline_metric=baseline,
        max_metric_drop=target.max_metric_drop,
        variants=variants,
        environment={"max_abs_diff": comparison.max_abs_diff},
    )
