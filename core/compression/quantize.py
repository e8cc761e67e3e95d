"""INT8 quantisation (static QDQ per-channel with calibration; dynamic) and FP16 conversion."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


class _Calibration:
    """ONNX Runtime's CalibrationDataReader over float32 batches (split to batch 1 rows so the
    graph's dynamic batch axis never matters)."""

    def __init__(self, input_name: str, batches: Iterable[np.ndarray], limit: int) -> None:
        self.input_name = input_name
        self._rows = self._iter(batches, limit)

    @staticmethod
    def _iter(batches: Iterable[np.ndarray], limit: int) -> Iterator[np.ndarray]:
        seen = 0
        for batch in batches:
            for row in np.asarray(batch, dtype=np.float32):
                if seen >= limit:
                    return
                seen += 1
                yield row[None]

    def get_next(self) -> dict[str, np.ndarray] | None:
        row = next(self._rows, None)
        return None if row is None else {self.input_name: row}


def _input_name(path: Path) -> str:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in initializers]
    if len(names) != 1:
        raise ValueError(f"static quantisation needs a single-input graph, got {names}")
    return names[0]


def quantize_static_int8(
    src: Path,
    dst: Path,
    calibration: Callable[[], Iterable[np.ndarray]],
    *,
    max_samples: int = 256,
    method: str = "minmax",
    per_channel: bool = True,
) -> Path:
    """Static INT8: QDQ format, weights int8 per output channel, activations uint8 with ranges
    calibrated on training samples (``method``: minmax | entropy | percentile)."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    if method not in methods:
        raise ValueError(f"method must be one of {sorted(methods)}, got {method!r}")
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        reader = _Calibration(_input_name(prepared), calibration(), max_samples)
        quantize_static(
            str(prepared),
            str(dst),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=methods[method],
            extra_options={"CalibTensorRangeSymmetric": False},
        )
    return dst


def quantize_dynamic_int8(src: Path, dst: Path) -> Path:
    """Dynamic INT8: weights int8 ahead of time, activations quantised per batch at run time.
    Pays off on MatMul/Gemm-heavy (linear, transformer) graphs; conv nets rarely gain."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The dynamo exporter records value_info for Gemm weights; the quantizer transposes them
    # into MatMulInteger and ONNX shape inference then rejects the stale shapes.
    model = onnx.load(str(src))
    del model.graph.value_info[:]
    with tempfile.TemporaryDirectory() as tmp:
        cleaned = Path(tmp) / "cleaned.onnx"
        onnx.save(model, str(cleaned))
        quantize_dynamic(str(cleaned), str(dst), weight_type=QuantType.QInt8, per_channel=True)
    return dst


def convert_fp16(src: Path, dst: Path) -> Path:
    """FP16 weights and compute for GPUs (inputs/outputs stay float32 so callers do not
    change). On CPU ONNX Runtime mostly casts back to fp32: measure it on a GPU."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src))
    half = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=False)
    onnx.save(half, str(dst))
    return dst


def linear_share(module: torch.nn.Module) -> float:
    """Fraction of parameters in Linear layers (decides whether dynamic INT8 is tried)."""
    import torch

    total = sum(p.numel() for p in module.parameters()) or 1
    linear = sum(
        p.numel()
        for m in module.modules()
        if isinstance(m, torch.nn.Linear)
        for p in m.parameters(recurse=False)
    )
    return linear / total
