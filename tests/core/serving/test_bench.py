from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import typer
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner
from verticals.core.serving.bench import (
    bench_serving,
    bench_serving_command,
    model_cost,
    run_load,
)
from verticals.core.serving.runtime import CPU, RuntimeOptions, create_session


def mlp_model() -> bytes:
    """x: float32 [batch, 64] → relu(x @ W1) @ W2, a little real work per call."""
    rng = np.random.default_rng(0)
    w1 = rng.normal(size=(64, 256)).astype(np.float32)
    w2 = rng.normal(size=(256, 2)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W1"], ["h"]),
            helper.make_node("Relu", ["h"], ["r"]),
            helper.make_node("MatMul", ["r", "W2"], ["y"]),
        ],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])],
        initializer=[numpy_helper.from_array(w1, "W1"), numpy_helper.from_array(w2, "W2")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_run_load_counts_requests_and_errors():
    calls = {"n": 0}

    def flaky(_x):
        calls["n"] += 1
        time.sleep(0.001)
        if calls["n"] % 5 == 0:
            raise RuntimeError("boom")

    result = run_load(flaky, np.zeros(1), concurrency=3, duration_s=0.3, warmup_s=0.05)
    assert result.requests > 0 and result.errors > 0
    assert result.p50_ms <= result.p99_ms
    assert result.throughput_rps == pytest.approx(result.requests / result.seconds, rel=0.01)
    with pytest.raises(ValueError, match="concurrency"):
        run_load(flaky, np.zeros(1), concurrency=0, duration_s=1)


def test_model_cost_tells_a_per_call_cost_from_a_per_item_cost():
    def per_call(batch):  # the same time whatever the batch: batching gains the batch size
        time.sleep(0.002)

    def per_item(batch):  # time grows with the batch: nothing to gain
        time.sleep(0.0005 * len(batch))

    sample = np.zeros(4, np.float32)
    fixed = model_cost(per_call, sample, batch_size=8, seconds=0.1)
    linear = model_cost(per_item, sample, batch_size=8, seconds=0.1)
    assert fixed.batch_size == 8
    assert fixed.ceiling > 4
    assert linear.ceiling < 1.6
    assert fixed.ms_per_item_b1 > fixed.ms_per_item_batched


def test_bench_serving_runs_both_modes():
    model = create_session(mlp_model(), RuntimeOptions(providers=[CPU], intra_op_threads=1))
    result = bench_serving(
        model, np.ones(64, np.float32), name="mlp", concurrency=8, duration_s=0.4
    )
    assert result.batched.requests > 0 and result.unbatched.requests > 0
    assert result.batched.errors == 0 and result.unbatched.errors == 0
    assert result.settings["max_batch_size"] == 8
    assert result.speedup > 0
    assert result.transport == "in-process"
    assert result.model_cost.batch_size == 8 and result.model_cost.ceiling > 0
    assert result.summary()["model_only_ceiling"] == result.model_cost.ceiling


def test_command_prints_json_last(tmp_path: Path):
    path = tmp_path / "mlp.onnx"
    path.write_bytes(mlp_model())
    onnx.checker.check_model(str(path))
    app = typer.Typer()
    app.command()(bench_serving_command)
    result = CliRunner().invoke(
        app, ["--model", str(path), "--concurrency", "4", "--duration", "0.5", "--json"]
    )
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout.strip().splitlines()[-1])
    for mode in ("batched", "unbatched"):
        assert set(line[mode]) == {"throughput_rps", "p50_ms", "p99_ms"}
    help_text = CliRunner().invoke(app, ["--help"]).stdout
    assert "IN-PROCESS" in help_text
