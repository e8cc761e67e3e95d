from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from verticals.core.compression.export import export_onnx
from verticals.core.compression.pipeline import CompressionPlan
from verticals.core.compression.report import REQUIRED_VARIANTS
from verticals.core.errors import IntegrityError
from verticals.core.serving.runtime import CPU, RuntimeOptions, create_session


def test_export_has_dynamic_batch_and_no_side_file(tiny_target, tmp_path: Path):
    path = tmp_path / "m.onnx"
    check = export_onnx(tiny_target.module, tiny_target.example_input, path)
    assert check.max_abs_diff < 1e-4
    assert not (tmp_path / "m.onnx.data").exists()
    graph = onnx.load(str(path)).graph
    batch_dim = graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.dim_value  # symbolic
    session = create_session(path, RuntimeOptions(providers=[CPU], warmup_runs=0))
    assert session.run(np.zeros((5, 1, 16, 16), np.float32)).shape == (5, 1)


def test_export_refuses_numerics_that_differ(tiny_target, tmp_path: Path, monkeypatch):
    from verticals.core.compression import export

    monkeypatch.setattr(export.np, "abs", lambda a: np.full_like(a, 1.0))
    with pytest.raises(IntegrityError, match="differs from torch"):
        export_onnx(tiny_target.module, tiny_target.example_input, tmp_path / "m.onnx")


def test_report_has_every_variant_measured(report):
    names = [v.name for v in report.variants]
    assert set(REQUIRED_VARIANTS) <= set(names)
    assert {"pruned75-onnx-fp32", "pruned75-onnx-int8", "onnx-fp16"} <= set(names)
    assert "onnx-int8-dynamic" not in names  # a conv net is not linear-heavy
    for v in report.variants:
        assert v.bytes > 0 and v.metric_name == "auc"
        if v.name != "onnx-fp16":
            assert v.latency_ms_b1 > 0 and v.latency_ms_b32 > 0
        assert Path(v.path).is_file()
    assert report.baseline_metric > 0.9
    assert report.variant("torch-fp32").metric_drop == 0


def test_int8_is_smaller_and_accurate(report):
    fp32, int8 = report.variant("onnx-fp32"), report.variant("onnx-int8")
    assert abs(fp32.metric - report.baseline_metric) < 1e-3
    assert int8.bytes < 0.5 * fp32.bytes  # tiny graph: fixed overhead weighs more than here
    assert int8.metric_drop < 0.05
    q_ops = {n.op_type for n in onnx.load(int8.path).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= q_ops


def test_pruned_int8_is_the_smallest(report):
    smallest = min(report.variants, key=lambda v: v.bytes)
    assert smallest.name == "pruned75-onnx-int8"
    # A 20k-parameter graph: fixed ONNX overhead keeps the ratio above the 1/8 a real net reaches.
    assert smallest.size_ratio < 0.35
    assert smallest.bytes < report.variant("onnx-int8").bytes  # pruning shrank it further
    assert smallest.metric_drop < 0.05


def test_summary_is_the_command_line(report):
    summary = report.summary()
    assert summary["model"] == "testdomain/tiny"
    row = summary["variants"][0]
    assert set(row) >= {"name", "bytes", "latency_ms_b1", "latency_ms_b32", "metric", "metric_name"}


def test_plan_is_validated():
    with pytest.raises(ValueError, match="prune_amounts"):
        CompressionPlan(prune_amounts=(1.5,))


def test_dynamic_int8_for_linear_heavy_models(tmp_path: Path):
    from verticals.core.compression.quantize import linear_share, quantize_dynamic_int8

    mlp = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 2))
    assert linear_share(mlp) == 1.0
    src = tmp_path / "mlp.onnx"
    export_onnx(mlp.eval(), torch.randn(1, 64), src)
    dst = quantize_dynamic_int8(src, tmp_path / "mlp-int8.onnx")
    assert dst.stat().st_size < 0.5 * src.stat().st_size
    session = create_session(dst, RuntimeOptions(providers=[CPU], warmup_runs=0))
    x = np.random.default_rng(0).normal(size=(4, 64)).astype(np.float32)
    with torch.no_grad():
        expected = mlp(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(session.run(x) - expected)) < 0.1
