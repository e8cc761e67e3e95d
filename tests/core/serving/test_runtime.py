from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from verticals.core.errors import IntegrityError, InvalidInput, ModelUnavailable
from verticals.core.serving import runtime
from verticals.core.serving.batching import MicroBatcher
from verticals.core.serving.runtime import (
    CPU,
    CUDA,
    TENSORRT,
    RuntimeOptions,
    choose_providers,
    create_session,
    load_verified_model,
    stacked_handler,
)

WEIGHT = np.arange(12, dtype=np.float32).reshape(4, 3) / 10


def linear_model() -> bytes:
    """y = x @ W + 1, x: float32 [batch, 4] with a symbolic batch axis."""
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "one"], ["y"]),
        ],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        initializer=[
            numpy_helper.from_array(WEIGHT, "W"),
            numpy_helper.from_array(np.ones(3, np.float32), "one"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def gpu_present() -> bool:
    if CUDA not in ort.get_available_providers():
        return False
    try:
        model = create_session(linear_model(), RuntimeOptions(warmup_runs=0))
    except ModelUnavailable:
        return False
    return model.device != "cpu"


def test_cpu_session_runs_and_reports_its_providers(tmp_path: Path):
    path = tmp_path / "linear.onnx"
    path.write_bytes(linear_model())
    model = create_session(path, RuntimeOptions(providers=[CPU], intra_op_threads=1))
    assert model.providers == [CPU]
    assert model.device == "cpu" and not model.fell_back
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(model.run(x), x @ WEIGHT + 1, rtol=1e-5)
    assert model.example_feeds(7)["x"].shape == (7, 4)
    assert model.describe()["inputs"]["x"][0] == "tensor(float)"


def test_providers_are_preferred_tensorrt_then_cuda_then_cpu(monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CPU, CUDA, TENSORRT], raising=True)
    chosen = choose_providers(RuntimeOptions(trt_fp16=True))
    assert [p if isinstance(p, str) else p[0] for p in chosen] == [TENSORRT, CUDA, CPU]
    assert chosen[0][1]["trt_fp16_enable"] is True
    with pytest.raises(InvalidInput, match="unknown execution providers"):
        choose_providers(RuntimeOptions(providers=["MadeUpExecutionProvider"]))


def test_cuda_listed_without_a_gpu_is_detected_after_creation(monkeypatch, caplog):
    """onnxruntime-gpu lists CUDA on a machine without a GPU and silently runs on CPU."""
    if gpu_present():
        pytest.skip("a GPU is present: the fallback cannot be observed")
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU], raising=True)
    model = create_session(linear_model(), RuntimeOptions(warmup_runs=0))
    assert CUDA in model.requested
    assert model.providers == [CPU] and model.fell_back
    with pytest.raises(ModelUnavailable, match="required provider 'cuda'"):
        create_session(linear_model(), RuntimeOptions(require="cuda", warmup_runs=0))


def test_warm_up_runs_each_batch_size(monkeypatch):
    calls: list[tuple[int, ...]] = []
    original = runtime.OrtModel.warm_up

    def spy(self, runs, batch_sizes):
        calls.extend(tuple(self.example_feeds(b)["x"].shape) for b in batch_sizes)
        return original(self, runs, batch_sizes)

    monkeypatch.setattr(runtime.OrtModel, "warm_up", spy)
    create_session(linear_model(), RuntimeOptions(warmup_batch_sizes=[1, 32]))
    assert calls == [(1, 4), (32, 4)]


def test_thread_count_override(monkeypatch):
    monkeypatch.setenv("VERTICALS_ORT_THREADS", "3")
    assert runtime.default_intra_op_threads() == 3
    monkeypatch.setenv("VERTICALS_ORT_THREADS", "zero")
    with pytest.raises(InvalidInput):
        runtime.default_intra_op_threads()
    monkeypatch.delenv("VERTICALS_ORT_THREADS")
    assert 1 <= runtime.default_intra_op_threads() <= 8


def test_broken_model_is_unavailable():
    with pytest.raises(ModelUnavailable, match="cannot load"):
        create_session(b"not an onnx graph", RuntimeOptions(providers=[CPU]))


def test_registry_loading_checks_sha256(db, tmp_path: Path):
    from verticals.core.db import session_scope
    from verticals.core.registry import register

    path = tmp_path / "linear.onnx"
    path.write_bytes(linear_model())
    with session_scope() as session:
        version = register(
            session, domain="testdomain", name="linear", version="1", artifact_path=path
        )
    model = load_verified_model(version)
    assert model.source == "testdomain/linear:1"
    assert model.run(np.zeros((1, 4), np.float32)).shape == (1, 3)
    path.write_bytes(linear_model() + b"\x00")
    with pytest.raises(IntegrityError, match="sha256"):
        load_verified_model(version)


def test_stacked_handler_serves_a_micro_batcher():
    model = create_session(linear_model(), RuntimeOptions(providers=[CPU]))
    batcher = MicroBatcher(
        stacked_handler(model.run),
        max_batch_size=4,
        max_wait_ms=5,
        max_queue=16,
        timeout_s=2,
        name="test-runtime",
        metrics=False,
    )
    with batcher:
        out = batcher.submit_sync(np.ones(4, np.float32))
    np.testing.assert_allclose(out, np.ones(4) @ WEIGHT + 1, rtol=1e-5)


@pytest.mark.gpu
def test_cuda_session_is_really_on_gpu():
    if not gpu_present():
        pytest.skip("no usable CUDA device")
    model = create_session(linear_model(), RuntimeOptions(require="cuda", providers=[CUDA, CPU]))
    assert model.providers[0] == CUDA
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(model.run(x), x @ WEIGHT + 1, rtol=1e-4)


@pytest.mark.gpu
def test_tensorrt_session_when_present():
    if TENSORRT not in ort.get_available_providers() or not gpu_present():
        pytest.skip("TensorRT provider not usable here")
    model = create_session(linear_model(), RuntimeOptions(providers=[TENSORRT, CUDA, CPU]))
    assert model.device in ("tensorrt", "cuda")
