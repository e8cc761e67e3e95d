"""ONNX Runtime sessions: providers by availability (TensorRT → CUDA → CPU), checked after
creation, sensible thread counts, warm-up on load, sha256-verified loading through the registry.

``onnxruntime-gpu`` lists ``CUDAExecutionProvider`` as *available* even on a machine with no GPU
(or a broken CUDA install) and then silently runs on CPU; the only truth is
``session.get_providers()`` after the session exists, which :func:`create_session` reads and
reports (and enforces with ``require=``).

Example::

    model = load_verified_model(version)       # registry ModelVersion → verified OrtModel
    probs = model.run(batch)                    # batch: float32 [N, ...] → first output [N, ...]
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from verticals.core.errors import InvalidInput, ModelUnavailable

if TYPE_CHECKING:
    import onnxruntime as ort
    from verticals.core.registry import ModelVersion

log = logging.getLogger(__name__)

TENSORRT = "TensorrtExecutionProvider"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
PREFERENCE: tuple[str, ...] = (TENSORRT, CUDA, CPU)
DeviceKind = Literal["tensorrt", "cuda", "cpu"]

_NUMPY_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - a base dependency in practice
        raise ModelUnavailable(
            "onnxruntime is not installed: pip install 'verticals[cpu]' (or [gpu])"
        ) from exc
    return onnxruntime


class RuntimeOptions(BaseModel):
    """How to build a session. ``providers`` None means "best available" (TensorRT → CUDA → CPU)."""

    model_config = ConfigDict(extra="forbid")

    providers: list[str] | None = None
    require: DeviceKind | None = Field(
        None, description="fail with ModelUnavailable unless this provider is really active"
    )
    intra_op_threads: int | None = Field(None, ge=1, le=256)
    inter_op_threads: int = Field(1, ge=1, le=64)
    graph_optimization: Literal["disable", "basic", "extended", "all"] = "all"
    warmup_runs: int = Field(2, ge=0, le=100)
    warmup_batch_sizes: list[int] = Field(default_factory=lambda: [1])
    trt_fp16: bool = False
    trt_cache_dir: Path | None = None
    device_id: int = Field(0, ge=0)


def cpu_count() -> int:
    """CPUs this process may use (cgroup/affinity aware where the OS tells)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def default_intra_op_threads() -> int:
    """One thread per usable core, capped at 8 (past that ORT's per-op scaling is poor and a
    replica is better); ``VERTICALS_ORT_THREADS`` overrides."""
    override = os.environ.get("VERTICALS_ORT_THREADS")
    if override:
        try:
            value = int(override)
        except ValueError:
            raise InvalidInput(f"VERTICALS_ORT_THREADS must be an int, got {override!r}") from None
        if value < 1:
            raise InvalidInput("VERTICALS_ORT_THREADS must be >= 1")
        return value
    return min(cpu_count(), 8)


def available_providers() -> list[str]:
    """What the installed onnxruntime build *offers* — not proof that a device works."""
    return list(_ort().get_available_providers())


def choose_providers(options: RuntimeOptions | None = None) -> list[str | tuple[str, dict]]:
    """Providers to ask for, best first, with their options; CPU is always last."""
    options = options or RuntimeOptions()
    offered = set(available_providers())
    wanted = options.providers or list(PREFERENCE)
    unknown = [p for p in wanted if p not in PREFERENCE and p not in offered]
    if unknown:
        raise InvalidInput(f"unknown execution providers {unknown}", {"known": list(PREFERENCE)})
    chosen: list[str | tuple[str, dict]] = []
    for name in wanted:
        if name not in offered or name == CPU:
            continue
        if name == TENSORRT:
            trt: dict[str, Any] = {
                "device_id": options.device_id,
                "trt_fp16_enable": options.trt_fp16,
            }
            if options.trt_cache_dir is not None:
                options.trt_cache_dir.mkdir(parents=True, exist_ok=True)
                trt.update(
                    trt_engine_cache_enable=True, trt_engine_cache_path=str(options.trt_cache_dir)
                )
            chosen.append((TENSORRT, trt))
        elif name == CUDA:
            chosen.append((CUDA, {"device_id": options.device_id}))
        else:
            chosen.append((name, {}))
    chosen.append(CPU)
    return chosen


def device_kind(active: Sequence[str]) -> DeviceKind:
    if active and active[0] == TENSORRT:
        return "tensorrt"
    if active and active[0] == CUDA:
        return "cuda"
    return "cpu"


def _session_options(options: RuntimeOptions) -> Any:
    ort = _ort()
    so = ort.SessionOptions()
    so.intra_op_num_threads = options.intra_op_threads or default_intra_op_threads()
    so.inter_op_num_threads = options.inter_op_threads
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[options.graph_optimization]
    return so


class OrtModel:
    """A loaded ONNX Runtime session with the providers it really got.

    ``run(x)`` feeds ``x`` (a numpy array for single-input models, or a dict name → array) and
    returns the first output; ``run_all`` returns every output.
    """

    def __init__(self, session: ort.InferenceSession, *, requested: list[str], source: str) -> None:
        self.session = session
        self.requested = requested
        self.source = source
        self.providers: list[str] = list(session.get_providers())
        self.device: DeviceKind = device_kind(self.providers)
        self.inputs = session.get_inputs()
        self.outputs = session.get_outputs()
        self.input_names = [i.name for i in self.inputs]
        self.output_names = [o.name for o in self.outputs]

    @property
    def fell_back(self) -> bool:
        """A GPU provider was asked for but the session is on CPU only."""
        return self.device == "cpu" and any(p in (TENSORRT, CUDA) for p in self.requested)

    def feeds(self, x: np.ndarray | dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if isinstance(x, dict):
            return x
        if len(self.inputs) != 1:
            raise InvalidInput(f"model takes inputs {self.input_names}; pass a dict")
        return {self.input_names[0]: np.ascontiguousarray(x)}

    def run_all(self, x: np.ndarray | dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(None, self.feeds(x))

    def run(self, x: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
        return self.run_all(x)[0]

    def example_feeds(self, batch_size: int = 1) -> dict[str, np.ndarray]:
        """Zeros shaped like the inputs, symbolic dimensions set to ``batch_size`` (first) or 1."""
        feeds: dict[str, np.ndarray] = {}
        for spec in self.inputs:
            shape = [
                d if isinstance(d, int) and d > 0 else (batch_size if i == 0 else 1)
                for i, d in enumerate(spec.shape)
            ]
            dtype = _NUMPY_TYPES.get(spec.type, np.float32)
            feeds[spec.name] = np.zeros(shape, dtype=dtype)
        return feeds

    def warm_up(self, runs: int = 2, batch_sizes: Sequence[int] = (1,)) -> float:
        """Run zeros through the graph (allocations, kernel choice, TensorRT engine build).
        Returns the seconds it took."""
        started = time.perf_counter()
        for batch_size in batch_sizes:
            feeds = self.example_feeds(batch_size)
            for _ in range(runs):
                self.session.run(None, feeds)
        return time.perf_counter() - started

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "providers": self.providers,
            "requested": self.requested,
            "device": self.device,
            "inputs": {i.name: [i.type, list(i.shape)] for i in self.inputs},
        }


def create_session(model: Path | bytes, options: RuntimeOptions | None = None) -> OrtModel:
    """Build a session with the best providers on offer, check what it really got, warm it up.

    Raises ModelUnavailable when ``options.require`` names a provider that is not active (e.g.
    ``require="cuda"`` on a machine whose onnxruntime-gpu silently fell back to CPU).
    """
    ort = _ort()
    options = options or RuntimeOptions()
    providers = choose_providers(options)
    requested = [p if isinstance(p, str) else p[0] for p in providers]
    source = str(model) if isinstance(model, Path) else f"<{len(model)} bytes>"
    payload = str(model) if isinstance(model, Path) else model
    try:
        session = ort.InferenceSession(
            payload, sess_options=_session_options(options), providers=providers
        )
    except Exception as exc:
        if requested == [CPU]:
            raise ModelUnavailable(f"cannot load ONNX model {source}: {exc}") from exc
        # a GPU provider failing outright (missing libraries): retry on CPU and say so
        log.warning("ONNX Runtime failed with %s (%s); retrying on CPU", requested, exc)
        session = ort.InferenceSession(
            payload, sess_options=_session_options(options), providers=[CPU]
        )
    loaded = OrtModel(session, requested=requested, source=source)
    if loaded.fell_back:
        log.warning(
            "asked ONNX Runtime for %s but the session runs on %s (no usable GPU?)",
            requested,
            loaded.providers,
        )
    if options.require is not None and loaded.device != options.require:
        raise ModelUnavailable(
            f"required provider {options.require!r} is not active for {source}",
            {"requested": requested, "active": loaded.providers},
        )
    if options.warmup_runs:
        seconds = loaded.warm_up(options.warmup_runs, options.warmup_batch_sizes)
        log.info("warmed up %s on %s in %.3f s", source, loaded.providers, seconds)
    return loaded


def load_verified_model(
    version: ModelVersion, options: RuntimeOptions | None = None
) -> OrtModel:
    """Load a registered ONNX artifact after its sha256 check (IntegrityError on a mismatch).

    The bytes handed to ONNX Runtime are the bytes hashed by the registry's verifying loader
    (:func:`~verticals.core.registry.read_verified`), so a file swapped between the check and
    the read is refused as well.
    """
    from verticals.core.registry import read_verified

    payload = read_verified(
        Path(version.artifact_path), version.sha256, what=f"artifact of {version.ref}"
    )
    loaded = create_session(payload, options)
    loaded.source = version.ref
    return loaded


def stacked_handler(
    run: Callable[[np.ndarray], np.ndarray],
) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    """Adapt a batch function ``[N, ...] → [N, ...]`` to the micro-batcher's list contract:
    single samples (each ``[...]``, no batch axis) are stacked, run once, and split again."""

    def handler(items: list[np.ndarray]) -> list[np.ndarray]:
        outputs = run(np.stack(items))
        return list(outputs)

    return handler
