"""``verticals bench serving``: one model served with and without dynamic batching under N
concurrent clients, in one run.

The load is generated **in-process**: N client threads each send one single-sample request at
a time (closed loop) straight to the model service — no HTTP, so the figures isolate what
batching does to the model runtime (HTTP overhead is the same in both modes and would only
dilute the ratio).
"""

from __future__ import annotations

import json as jsonlib
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from pydantic import BaseModel, Field
from verticals.core.compression.measure import latency_ms
from verticals.core.serving.batching import MicroBatcher
from verticals.core.serving.runtime import OrtModel, RuntimeOptions, create_session, stacked_handler

TRANSPORT = "in-process"


class LoadResult(BaseModel):
    throughput_rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int = 0
    seconds: float


class ModelCost(BaseModel):
    """The model alone, one caller, back to back: what batching can gain at most."""

    ms_per_item_b1: float
    ms_per_item_batched: float
    batch_size: int
    ceiling: float = Field(description="ms per item at batch 1 / at batch_size")


class BenchResult(BaseModel):
    model: str
    concurrency: int
    transport: str = TRANSPORT
    providers: list[str]
    batched: LoadResult
    unbatched: LoadResult
    speedup: float = Field(description="batched / unbatched throughput")
    model_cost: ModelCost
    settings: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        keep = ("throughput_rps", "p50_ms", "p99_ms")
        return {
            "model": self.model,
            "concurrency": self.concurrency,
            "transport": self.transport,
            "batched": {k: getattr(self.batched, k) for k in keep},
            "unbatched": {k: getattr(self.unbatched, k) for k in keep},
            "speedup": self.speedup,
            "model_only_ceiling": self.model_cost.ceiling,
        }


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def run_load(
    call: Callable[[np.ndarray], object],
    sample: np.ndarray,
    *,
    concurrency: int,
    duration_s: float,
    warmup_s: float = 0.5,
) -> LoadResult:
    """``concurrency`` threads call ``call(sample)`` back to back for ``warmup_s`` (not
    counted) and then ``duration_s``. Latencies in ms; errors are counted, not raised."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    if duration_s <= 0:
        raise ValueError(f"duration_s must be > 0, got {duration_s}")
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    start_barrier = threading.Barrier(concurrency + 1)
    begin = end = 0.0

    def client(i: int) -> None:
        start_barrier.wait()
        while True:
            t0 = time.perf_counter()
            if t0 >= end:
                return
            try:
                call(sample)
            except Exception:  # noqa: BLE001 - a benchmark counts failures, whatever they are
                errors[i] += 1
                continue
            if t0 >= begin:
                latencies[i].append((time.perf_counter() - t0) * 1000.0)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    now = time.perf_counter()
    begin, end = now + warmup_s, now + warmup_s + duration_s
    start_barrier.wait()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - begin
    flat = [x for per in latencies for x in per]
    return LoadResult(
        throughput_rps=round(len(flat) / seconds, 2),
        p50_ms=round(statistics.median(flat), 3) if flat else float("nan"),
        p99_ms=round(_percentile(flat, 99), 3),
        requests=len(flat),
        errors=sum(errors),
        seconds=round(seconds, 3),
    )


def model_cost(
    run: Callable[[np.ndarray], object], sample: np.ndarray, batch_size: int, seconds: float = 1.0
) -> ModelCost:
    """Per-item time of ``run`` at batch 1 and at ``batch_size`` (median call time, up to
    ``seconds`` of calls each). Compute that grows linearly with the batch leaves batching
    little to gain, whatever the serving code does; this says how much there is."""
    one = latency_ms(run, sample[None], budget_s=seconds)
    batch = np.repeat(sample[None], batch_size, axis=0)
    many = latency_ms(run, batch, budget_s=seconds) / batch_size
    return ModelCost(
        ms_per_item_b1=round(one, 4),
        ms_per_item_batched=round(many, 4),
        batch_size=batch_size,
        ceiling=round(one / many, 2),
    )


def bench_serving(
    model: OrtModel,
    sample: np.ndarray,
    *,
    name: str,
    concurrency: int = 32,
    duration_s: float = 10.0,
    max_batch_size: int | None = None,
    max_wait_ms: float = 2.0,
    workers: int = 1,
) -> BenchResult:
    """The same session, first called directly by each client (unbatched), then through a
    :class:`MicroBatcher`. ``sample`` is one input without the batch axis."""
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    one = sample[None]
    batch_size = max_batch_size or max(1, min(concurrency, 32))
    cost = model_cost(model.run, sample, batch_size, seconds=min(1.0, duration_s / 4))
    unbatched = run_load(model.run, one, concurrency=concurrency, duration_s=duration_s)
    batcher = MicroBatcher(
        stacked_handler(model.run),
        max_batch_size=batch_size,
        max_wait_ms=max_wait_ms,
        max_queue=max(batch_size, 4 * concurrency),
        timeout_s=30.0,
        name=f"bench:{name}",
        metrics=False,
        workers=workers,
    )
    with batcher:
        batched = run_load(
            batcher.submit_sync, sample, concurrency=concurrency, duration_s=duration_s
        )
    return BenchResult(
        model=name,
        concurrency=concurrency,
        providers=model.providers,
        batched=batched,
        unbatched=unbatched,
        speedup=round(batched.throughput_rps / max(unbatched.throughput_rps, 1e-9), 2),
        model_cost=cost,
        settings={
            "max_batch_size": batch_size,
            "max_wait_ms": max_wait_ms,
            "workers": workers,
            "duration_s": duration_s,
            "intra_op_threads": model.session.get_session_options().intra_op_num_threads,
        },
    )


def load_bench_model(spec: str, options: RuntimeOptions) -> tuple[OrtModel, np.ndarray]:
    """``spec``: an ``.onnx`` file, or a compression target (``<domain>/<model>`` /
    ``package.module:factory``) exported to ONNX fp32 on the fly."""
    path = Path(spec)
    if path.suffix == ".onnx" and path.is_file():
        model = create_session(path, options)
        feeds = model.example_feeds(1)
        rng = np.random.default_rng(0)
        sample = rng.normal(size=next(iter(feeds.values())).shape[1:]).astype(np.float32)
        return model, sample
    from verticals.core.compression.export import export_onnx, optimize_graph
    from verticals.core.compression.resolve import resolve_target
    from verticals.core.compression.target import CompressionTarget
    from verticals.core.errors import BadRequest

    target = resolve_target(spec)
    if not isinstance(target, CompressionTarget):
        raise BadRequest(f"{spec!r} is a tree model: bench it with its domain's bench command")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        export_onnx(target.module, target.example_input, raw)
        final = optimize_graph(raw, Path(tmp) / "model.onnx")
        model = create_session(final.read_bytes(), options)
    sample = target.example_input.detach().float().cpu().numpy()[0]
    return model, sample


def bench_serving_command(
    model: Annotated[
        str,
        typer.Option(
            "--model",
            help="'<domain>/<model>', 'package.module:factory' or a path to an .onnx file",
        ),
    ],
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=1024)] = 32,
    json: Annotated[bool, typer.Option("--json", help="print the result as the last line")] = False,
    duration: Annotated[
        float, typer.Option("--duration", min=0.5, help="seconds of load per mode")
    ] = 10.0,
    max_batch_size: Annotated[
        int | None, typer.Option("--max-batch-size", min=1, help="default: min(N, 32)")
    ] = None,
    max_wait_ms: Annotated[float, typer.Option("--max-wait-ms", min=0.0)] = 2.0,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="batcher worker threads")
    ] = 1,
) -> None:
    """Throughput and latency of one model with and without dynamic batching, N concurrent
    clients, in one run. The load is generated IN-PROCESS (client threads calling the model
    service directly, no HTTP on loopback); ONNX Runtime on the best available provider."""
    ort_model, sample = load_bench_model(model, RuntimeOptions(warmup_batch_sizes=[1, 32]))
    result = bench_serving(
        ort_model,
        sample,
        name=model,
        concurrency=concurrency,
        duration_s=duration,
        max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms,
        workers=workers,
    )
    from rich.console import Console

    console = Console(stderr=True)
    for mode in ("unbatched", "batched"):
        r: LoadResult = getattr(result, mode)
        console.print(
            f"{mode:>9}: {r.throughput_rps:8.1f} req/s  p50 {r.p50_ms:7.2f} ms  "
            f"p99 {r.p99_ms:7.2f} ms  ({r.requests} requests, {r.errors} errors)"
        )
    console.print(f"speedup {result.speedup:.2f}x on {result.providers[0]} ({TRANSPORT})")
    cost = result.model_cost
    console.print(
        f"model alone: {cost.ms_per_item_b1:.3f} ms/item at batch 1, "
        f"{cost.ms_per_item_batched:.3f} at batch {cost.batch_size}: "
        f"batching can gain at most {cost.ceiling:.2f}x here"
    )
    if json:
        print(jsonlib.dumps(result.summary()))
