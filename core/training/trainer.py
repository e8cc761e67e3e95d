"""A domain-free trainer for torch modules: AMP, DDP, accumulation, schedule, early stopping.

Datasets yield ``(input, target)`` pairs. Validation outputs of every process are gathered so
that all ranks compute identical metrics and take identical stop decisions; only rank 0 writes
checkpoints and calls the callbacks.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset
from verticals.core.training.checkpoint import save_checkpoint, state_path, unwrap
from verticals.core.training.config import EpochMetrics, TrainConfig, TrainResult
from verticals.core.training.distributed import DistContext, context_from_env, init_distributed
from verticals.core.training.progress import EpochProgress
from verticals.core.training.seed import seed_everything

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
MetricsFn = Callable[[np.ndarray, np.ndarray], dict[str, float]]
Callback = Callable[[EpochMetrics], None]


def pick_device(requested: str | None = None, ctx: DistContext | None = None) -> torch.device:
    """``requested`` if given, else CUDA (this process's local rank) when available, else CPU."""
    if requested:
        return torch.device(requested)
    if torch.cuda.is_available():
        local = ctx.local_rank if ctx else 0
        return torch.device("cuda", local % torch.cuda.device_count())
    return torch.device("cpu")


def amp_dtype_for(device: torch.device, amp: bool | None) -> torch.dtype | None:
    """bf16 on CUDA devices that support it, else fp16; None (no autocast) on CPU or when off."""
    if device.type != "cuda" or amp is False:
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _schedule(config: TrainConfig, total_steps: int) -> Callable[[int], float]:
    warmup = int(config.warmup_frac * total_steps)

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if config.schedule == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


class Trainer:
    """Fit ``model`` on ``train_data``, selecting the epoch with the best ``config.monitor``.

    ``metrics_fn(outputs, targets)`` receives the whole validation set's raw outputs and targets
    (numpy) and returns named metrics; ``val_loss`` is always computed. ``output_dir`` receives
    ``best.safetensors`` and ``best.json`` (rank 0 only). ``parameters`` may pass optimizer
    parameter groups (e.g. a lower learning rate for a pretrained backbone).
    """

    def __init__(
        self,
        model: nn.Module,
        train_data: Dataset,
        val_data: Dataset | None,
        loss_fn: LossFn,
        config: TrainConfig | None = None,
        *,
        metrics_fn: MetricsFn | None = None,
        output_dir: Path | None = None,
        callbacks: Sequence[Callback] = (),
        parameters: Iterable[Any] | None = None,
        checkpoint_metadata: dict[str, str] | None = None,
    ) -> None:
        self.config = config or TrainConfig()
        if val_data is None and self.config.monitor != "train_loss":
            raise ValueError("monitor must be 'train_loss' when there is no val_data")
        self.model = model
        self.train_data = train_data
        self.val_data = val_data
        self.loss_fn = loss_fn
        self.metrics_fn = metrics_fn
        self.output_dir = Path(output_dir) if output_dir else None
        self.callbacks = list(callbacks)
        self.parameters = parameters
        self.checkpoint_metadata = checkpoint_metadata
        self.ctx = context_from_env()
        self.device = pick_device(self.config.device, self.ctx)
        self.amp_dtype = amp_dtype_for(self.device, self.config.amp)

    # ----------------------------------------------------------------------------- helpers
    def _loader(self, generator: torch.Generator) -> tuple[DataLoader, DistributedSampler | None]:
        cfg, ctx = self.config, self.ctx
        sampler: DistributedSampler | None = None
        per_rank = len(self.train_data)  # type: ignore[arg-type]
        if ctx.distributed:
            sampler = DistributedSampler(
                self.train_data, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True,
                seed=cfg.seed,
            )
            per_rank = len(sampler)
        loader = DataLoader(
            self.train_data,
            batch_size=cfg.batch_size,
            shuffle=sampler is None,
            sampler=sampler,
            generator=generator,
            num_workers=cfg.num_workers,
            pin_memory=self.device.type == "cuda",
            # a last batch of one sample breaks BatchNorm in training mode
            drop_last=per_rank > cfg.batch_size and per_rank % cfg.batch_size == 1,
        )
        return loader, sampler

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.config.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _autocast(self) -> torch.autocast:
        if self.amp_dtype is None:
            return torch.autocast(device_type=self.device.type, enabled=False)
        return torch.autocast(device_type="cuda", dtype=self.amp_dtype)

    @torch.no_grad()
    def _validate(self, model: nn.Module) -> dict[str, float]:
        assert self.val_data is not None
        ctx = self.ctx
        if ctx.distributed:  # every rank evaluates with rank 0's BatchNorm statistics
            for buffer in unwrap(model).buffers():
                dist.broadcast(buffer, src=0)
        data: Dataset = self.val_data
        if ctx.distributed:
            data = Subset(self.val_data, range(ctx.rank, len(self.val_data), ctx.world_size))  # type: ignore[arg-type]
        loader = DataLoader(data, batch_size=max(self.config.batch_size, 256), shuffle=False)
        net = unwrap(model)
        net.eval()
        outs, tgts = [], []
        for x, y in loader:
            with self._autocast():
                out = net(self._to_device(x))
            outs.append(out.float().cpu())
            tgts.append(y.cpu())
        outputs = torch.cat(outs) if outs else torch.empty(0)
        targets = torch.cat(tgts) if tgts else torch.empty(0)
        if ctx.distributed:
            gathered: list[Any] = [None] * ctx.world_size
            dist.all_gather_object(gathered, (outputs, targets))
            outputs = torch.cat([g[0] for g in gathered])
            targets = torch.cat([g[1] for g in gathered])
        metrics = {"val_loss": float(self.loss_fn(outputs, targets.to(outputs.dtype)
                                                   if targets.is_floating_point() else targets))}
        if self.metrics_fn is not None:
            metrics.update(
                {k: float(v) for k, v in self.metrics_fn(outputs.numpy(), targets.numpy()).items()}
            )
        return metrics

    def _improved(self, score: float, best: float | None) -> bool:
        if best is None or math.isnan(best):
            return not math.isnan(score)
        if self.config.mode == "max":
            return score > best + self.config.min_delta
        return score < best - self.config.min_delta

    def _agree(self, value: Any) -> Any:
        """Rank 0's value on every rank (decisions must not diverge between processes)."""
        if not self.ctx.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    # --------------------------------------------------------------------------------- fit
    def fit(self) -> TrainResult:
        cfg, ctx = self.config, self.ctx
        start = time.perf_counter()
        init_distributed(ctx, self.device)
        if cfg.num_threads is not None:
            torch.set_num_threads(cfg.num_threads)
        generator = seed_everything(cfg.seed)
        model = self.model.to(self.device)
        if cfg.channels_last:
            # Module.to takes memory_format; torch's overloads do not declare it.
            model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        params = self.parameters if self.parameters is not None else model.parameters()
        if cfg.optimizer == "adamw":
            optimizer: torch.optim.Optimizer = torch.optim.AdamW(
                params, lr=cfg.lr, weight_decay=cfg.weight_decay
            )
        else:
            optimizer = torch.optim.SGD(
                params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                nesterov=cfg.momentum > 0,
            )
        train_model: nn.Module = model
        if ctx.distributed:
            train_model = DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        loader, sampler = self._loader(generator)
        steps_per_epoch = math.ceil(len(loader) / cfg.grad_accum_steps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, _schedule(cfg, steps_per_epoch * cfg.epochs)
        )
        scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)

        history: list[EpochMetrics] = []
        best_score: float | None = None
        best_epoch = 0
        best_metrics: dict[str, float] = {}
        best_state: dict[str, torch.Tensor] | None = None
        stale = 0
        stopped_early = False
        checkpoint = self.output_dir / "best.safetensors" if self.output_dir else None
        show = cfg.progress and ctx.is_main
        with EpochProgress(enabled=show) as bar:
            for epoch in range(1, cfg.epochs + 1):
                t0 = time.perf_counter()
                if sampler is not None:
                    sampler.set_epoch(epoch)
                train_model.train()
                bar.start_epoch(epoch, cfg.epochs, len(loader))
                total, count = 0.0, 0
                optimizer.zero_grad(set_to_none=True)
                for i, (x, y) in enumerate(loader):
                    x, y = self._to_device(x), y.to(self.device, non_blocking=True)
                    last_micro = (i + 1) % cfg.grad_accum_steps == 0 or i + 1 == len(loader)
                    sync = (
                        train_model.no_sync()  # type: ignore[operator]
                        if ctx.distributed and not last_micro
                        else contextlib.nullcontext()
                    )
                    with sync:
                        with self._autocast():
                            out = train_model(x)
                            loss = self.loss_fn(out.float(), y)
                        scaler.scale(loss / cfg.grad_accum_steps).backward()
                    if last_micro:
                        if cfg.max_grad_norm is not None:
                            scaler.unscale_(optimizer)
                            nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                        scaler.step(optimizer)
                        scaler.update()
                        optimizer.zero_grad(set_to_none=True)
                        scheduler.step()
                    total += float(loss.detach()) * len(x)
                    count += len(x)
                    bar.advance(float(loss.detach()))
                train_loss = total / max(1, count)
                if ctx.distributed:
                    pair = torch.tensor([total, float(count)], dtype=torch.float64)
                    dist.all_reduce(pair)
                    train_loss = float(pair[0] / pair[1].clamp(min=1))
                metrics = {"train_loss": train_loss}
                if self.val_data is not None:
                    metrics.update(self._validate(train_model))
                if cfg.monitor not in metrics:
                    raise ValueError(
                        f"monitor {cfg.monitor!r} is not among the metrics {sorted(metrics)}"
                    )
                score = metrics[cfg.monitor]
                is_best = self._improved(score, best_score)
                if is_best:
                    best_score, best_epoch, best_metrics, stale = score, epoch, metrics, 0
                    best_state = {
                        k: v.detach().clone() for k, v in unwrap(model).state_dict().items()
                    }
                    if checkpoint is not None and ctx.is_main:
                        save_checkpoint(
                            model, checkpoint, self._state(epoch, metrics, history),
                            self.checkpoint_metadata,
                        )
                else:
                    stale += 1
                record = EpochMetrics(
                    epoch=epoch, epochs=cfg.epochs, train_loss=train_loss,
                    lr=optimizer.param_groups[0]["lr"], metrics=metrics,
                    seconds=time.perf_counter() - t0, is_best=is_best, monitor=cfg.monitor,
                    best_score=best_score,
                )
                history.append(record)
                if ctx.is_main:
                    bar.end_epoch(record)
                    for callback in self.callbacks:
                        callback(record)
                stop = (cfg.patience is not None and stale >= cfg.patience) or (
                    cfg.max_seconds is not None and time.perf_counter() - start > cfg.max_seconds
                )
                if self._agree(stop):
                    stopped_early = epoch < cfg.epochs
                    break
        if best_state is not None:
            unwrap(model).load_state_dict(best_state)
        self.model = unwrap(model)
        result = TrainResult(
            best_epoch=best_epoch,
            best_score=float(best_score if best_score is not None else float("nan")),
            monitor=cfg.monitor,
            best_metrics=best_metrics,
            history=history,
            checkpoint=str(checkpoint) if checkpoint else None,
            state_file=str(state_path(checkpoint)) if checkpoint else None,
            seconds=time.perf_counter() - start,
            epochs_run=len(history),
            stopped_early=stopped_early,
            world_size=ctx.world_size,
            device=str(self.device),
            amp_dtype=str(self.amp_dtype).removeprefix("torch.") if self.amp_dtype else None,
        )
        if checkpoint is not None and ctx.is_main and best_state is not None:
            state = self._state(best_epoch, best_metrics, history)
            state["result"] = result.model_dump(mode="json", exclude={"history"})
            state_path(checkpoint).write_text(json.dumps(state, indent=2))
        return result

    def _state(
        self, epoch: int, metrics: dict[str, float], history: list[EpochMetrics]
    ) -> dict[str, Any]:
        return {
            "epoch": epoch,
            "metrics": metrics,
            "config": self.config.model_dump(mode="json"),
            "world_size": self.ctx.world_size,
            "device": str(self.device),
            "torch": torch.__version__,
            "history": [h.model_dump(mode="json") for h in history],
        }
