"""Build and measure every variant of one model in one run.

Variants (names are stable; the report lists each that was built):

- ``torch-fp32``            the source module, eager (bytes: its safetensors weights)
- ``onnx-fp32``             dynamo export, ORT basic graph optimisation
- ``onnx-int8``             static INT8, QDQ, per-channel, calibrated on training samples
- ``onnx-int8-dynamic``     dynamic INT8 (only when the model is linear-heavy)
- ``onnx-fp16``             FP16 weights/compute for GPUs (CPU latency is not its purpose)
- ``pruned{P}-onnx-fp32``   P % of each prunable chain's channels removed, fine-tuned
- ``pruned{P}-onnx-int8``   the same, static INT8 (usually the smallest)
"""

from __future__ import annotations

import logging
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verticals.core.compression import measure, prune, quantize
from verticals.core.compression.export import ExportCheck, export_onnx, optimize_graph
from verticals.core.compression.report import CompressionReport, VariantReport
from verticals.core.compression.target import CompressionTarget, PredictFn

if TYPE_CHECKING:
    import torch
    from verticals.core.serving.runtime import OrtModel

log = logging.getLogger(__name__)

Step = Callable[[str], None]


@dataclass
class CompressionPlan:
    """What to build. Defaults fit a conv net on a small CPU."""

    prune_amounts: tuple[float, ...] = (0.75,)
    unstructured_amount: float | None = None
    dynamic_int8: bool | None = None  # None: only when >= 30 % of parameters are Linear
    fp16: bool = True
    calibration_samples: int = 256
    calibration_method: str = "minmax"
    latency_budget_s: float = 2.0
    measure_gpu: bool | None = None  # None: when torch sees CUDA and ORT really runs on it
    threads: int | None = None
    skip: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        for amount in self.prune_amounts:
            if not 0 < amount < 1:
                raise ValueError(f"prune_amounts must be in (0, 1), got {amount}")
        if self.unstructured_amount is not None and not 0 < self.unstructured_amount < 1:
            raise ValueError("unstructured_amount must be in (0, 1)")
        if self.calibration_samples < 1:
            raise ValueError("calibration_samples must be >= 1")


def _gpu_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001 - a broken torch install means no GPU here
        return False


class _Builder:
    def __init__(
        self, target: CompressionTarget, out_dir: Path, plan: CompressionPlan, step: Step
    ) -> None:
        import torch
        from verticals.core.serving.runtime import default_intra_op_threads

        self.target = target
        self.out_dir = out_dir
        self.plan = plan
        self.step = step
        self.threads = plan.threads or default_intra_op_threads()
        torch.set_num_threads(self.threads)
        self.example = target.example_input.detach().float().cpu().numpy()
        self.b1 = measure.batch_of(self.example, 1)
        self.b32 = measure.batch_of(self.example, 32)
        self.gpu = _gpu_available() if plan.measure_gpu is None else plan.measure_gpu
        self.variants: list[VariantReport] = []
        self.baseline: float | None = None
        self.metric_name = ""

    # ------------------------------------------------------------------ helpers
    def _latency(self, predict: PredictFn) -> tuple[float, float]:
        budget = self.plan.latency_budget_s
        return (
            measure.latency_ms(predict, self.b1, budget_s=budget),
            measure.latency_ms(predict, self.b32, budget_s=budget, max_runs=50),
        )

    def _session(self, path: Path, gpu: bool = False) -> OrtModel:
        from verticals.core.serving.runtime import (
            CPU,
            CUDA,
            TENSORRT,
            RuntimeOptions,
            create_session,
        )

        if gpu:
            return create_session(
                path,
                RuntimeOptions(providers=[TENSORRT, CUDA, CPU], require=None, warmup_runs=1),
            )
        return create_session(
            path,
            RuntimeOptions(providers=[CPU], intra_op_threads=self.threads, warmup_runs=1),
        )

    def _add(self, name: str, nbytes: int, predict: PredictFn | None, **kw: Any) -> VariantReport:
        self.step(f"measuring {name}")
        metric = None
        b1 = b32 = None
        if predict is not None:
            metric, metric_name = self.target.metric(predict)
            if metric_name != self.metric_name and self.metric_name:
                raise ValueError(f"metric name changed from {self.metric_name} to {metric_name}")
            self.metric_name = metric_name
            if self.baseline is None:
                self.baseline = metric
            if not kw.pop("skip_cpu_latency", False):
                b1, b32 = self._latency(predict)
        kw.pop("skip_cpu_latency", None)
        drop = (
            None
            if metric is None or self.baseline is None
            else self.target.metric_drop(self.baseline, metric)
        )
        variant = VariantReport(
            name=name,
            bytes=nbytes,
            latency_ms_b1=b1,
            latency_ms_b32=b32,
            metric=metric,
            metric_name=self.metric_name,
            metric_drop=drop,
            within_tolerance=None if drop is None else drop <= self.target.max_metric_drop,
            **kw,
        )
        self.variants.append(variant)
        log.info("%s: %s", self.target.name, variant.model_dump_json())
        return variant

    def _onnx_variant(self, name: str, path: Path, notes: str = "", **kw: Any) -> VariantReport:
        session = self._session(path)
        gpu_b1 = gpu_b32 = None
        if self.gpu:
            gpu_session = self._session(path, gpu=True)
            if gpu_session.device != "cpu":
                gpu_b1, gpu_b32 = self._latency(measure.ort_predict(gpu_session))
        return self._add(
            name,
            measure.file_bytes(path),
            measure.ort_predict(session),
            path=str(path),
            notes=notes,
            gpu_latency_ms_b1=gpu_b1,
            gpu_latency_ms_b32=gpu_b32,
            **kw,
        )

    # ------------------------------------------------------------------ variants
    def torch_fp32(self, module: torch.nn.Module) -> None:
        from safetensors.torch import save_file

        path = self.out_dir / "torch-fp32.safetensors"
        save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(path))
        gpu_b1 = gpu_b32 = None
        if self.gpu:
            import copy

            gpu_b1, gpu_b32 = self._latency(
                measure.torch_predict(copy.deepcopy(module), device="cuda")
            )
        self._add(
            "torch-fp32",
            measure.file_bytes(path),
            measure.torch_predict(module),
            format="safetensors",
            path=str(path),
            notes="torch eager",
            gpu_latency_ms_b1=gpu_b1,
            gpu_latency_ms_b32=gpu_b32,
        )

    def export(self, module: torch.nn.Module, stem: str) -> tuple[Path, ExportCheck]:
        import torch

        self.step(f"exporting {stem}")
        raw = self.out_dir / f"{stem}.raw.onnx"
        check = export_onnx(module, torch.from_numpy(self.example), raw)
        final = optimize_graph(raw, self.out_dir / f"{stem}.onnx")
        raw.unlink()
        return final, check

    def int8_static(self, src: Path, name: str) -> Path:
        self.step(f"calibrating {name}")
        dst = self.out_dir / f"{name}.onnx"
        quantize.quantize_static_int8(
            src,
            dst,
            self.target.calibration,
            max_samples=self.plan.calibration_samples,
            method=self.plan.calibration_method,
        )
        return dst


def compress(
    target: CompressionTarget,
    out_dir: Path,
    plan: CompressionPlan | None = None,
    *,
    step: Step | None = None,
) -> CompressionReport:
    """Build every variant of ``target`` under ``out_dir`` and measure it. ``step`` is called
    with a short description before each stage (progress bars, logs)."""
    import copy

    import onnxruntime
    import torch

    plan = plan or CompressionPlan()
    out_dir.mkdir(parents=True, exist_ok=True)
    b = _Builder(target, out_dir, plan, step or (lambda _msg: None))
    module = copy.deepcopy(target.module).float().cpu().eval()

    b.torch_fp32(module)
    fp32_path, check = b.export(module, "onnx-fp32")
    fp32 = b._onnx_variant(
        "onnx-fp32", fp32_path, notes=f"max |onnx-torch| {check.max_abs_diff:.1e}"
    )

    int8_path = b.int8_static(fp32_path, "onnx-int8")
    b._onnx_variant("onnx-int8", int8_path, notes="static QDQ per-channel")

    linear_heavy = quantize.linear_share(module) >= 0.3
    if plan.dynamic_int8 if plan.dynamic_int8 is not None else linear_heavy:
        b.step("quantising onnx-int8-dynamic")
        path = quantize.quantize_dynamic_int8(fp32_path, out_dir / "onnx-int8-dynamic.onnx")
        b._onnx_variant("onnx-int8-dynamic", path, notes="dynamic")

    if plan.fp16 and "onnx-fp16" not in plan.skip:
        b.step("converting onnx-fp16")
        path = quantize.convert_fp16(fp32_path, out_dir / "onnx-fp16.onnx")
        try:
            b._onnx_variant("onnx-fp16", path, notes="for GPU; CPU latency is not its purpose")
        except Exception as exc:  # noqa: BLE001 - fp16 graphs may lack CPU kernels: bytes only
            log.warning("fp16 variant not measurable on CPU: %s", exc)
            b._add("onnx-fp16", measure.file_bytes(path), None, path=str(path), notes=str(exc))

    if target.fine_tune is not None:
        for amount in plan.prune_amounts:
            tag = f"pruned{round(amount * 100)}"
            b.step(f"pruning {tag} ({target.fine_tune_steps} fine-tune steps)")
            pruned, chains = prune.prune_channels(module, amount)
            if not chains:
                log.warning("%s has no prunable channel chains", target.name)
                break
            pruned.train()
            target.fine_tune(pruned, target.fine_tune_steps)
            pruned = pruned.float().cpu().eval()
            params = prune.parameter_count(pruned) / prune.parameter_count(module)
            path, _ = b.export(pruned, f"{tag}-onnx-fp32")
            note = f"{len(chains)} chains, {params:.0%} of parameters, fine-tuned"
            b._onnx_variant(f"{tag}-onnx-fp32", path, notes=note)
            b._onnx_variant(f"{tag}-onnx-int8", b.int8_static(path, f"{tag}-onnx-int8"), notes=note)
        if plan.unstructured_amount:
            amount = plan.unstructured_amount
            tag = f"sparse{round(amount * 100)}"
            b.step(f"pruning {tag} (unstructured)")
            sparse = prune.prune_unstructured(module, amount)
            sparse.train()
            target.fine_tune(sparse, target.fine_tune_steps)
            sparse = prune.prune_unstructured(sparse.eval(), amount)  # re-apply after training
            path, _ = b.export(sparse, f"{tag}-onnx-int8-src")
            b._onnx_variant(
                f"{tag}-onnx-int8",
                b.int8_static(path, f"{tag}-onnx-int8"),
                notes="unstructured zeros: dense ONNX bytes do not shrink",
            )
            path.unlink()
    else:
        log.info("%s gives no fine_tune step: pruning skipped", target.name)

    for variant in b.variants:
        if variant.format == "onnx":
            variant.size_ratio = round(variant.bytes / fp32.bytes, 4)
    return CompressionReport(
        model=target.name,
        version=target.version,
        metric_name=b.metric_name,
        baseline_metric=b.baseline if b.baseline is not None else float("nan"),
        max_metric_drop=target.max_metric_drop,
        export=check,
        variants=b.variants,
        environment={
            "cpu_threads": b.threads,
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "processor": platform.processor(),
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
            "gpu": torch.cuda.get_device_name(0) if b.gpu else None,
        },
    )
