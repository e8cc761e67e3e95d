"""Typed configuration and results of a training run."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TrainConfig(BaseModel):
    """Hyper-parameters and run options of :class:`~verticals.core.training.Trainer`.

    ``batch_size`` is per process: a DDP job of N processes steps on N × batch_size samples.
    """

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    momentum: float = Field(0.9, ge=0, lt=1)
    schedule: Literal["cosine", "constant"] = "cosine"
    warmup_frac: float = Field(0.05, ge=0, lt=1, description="share of steps with linear warm-up")
    grad_accum_steps: int = Field(1, ge=1)
    max_grad_norm: float | None = Field(None, gt=0)
    amp: bool | None = Field(None, description="None: on for CUDA, off on CPU")
    channels_last: bool = False
    monitor: str = "val_loss"
    mode: Literal["min", "max"] = "min"
    patience: int | None = Field(None, ge=1, description="early stopping; None disables it")
    min_delta: float = Field(0.0, ge=0)
    max_seconds: float | None = Field(None, gt=0, description="stop after the epoch past this")
    seed: int = Field(0, ge=0)
    num_workers: int = Field(0, ge=0)
    num_threads: int | None = Field(None, ge=1, description="torch intra-op threads; None: as is")
    device: str | None = Field(None, description="None: CUDA when available, else CPU")
    progress: bool = True

    @model_validator(mode="after")
    def _check_amp(self) -> TrainConfig:
        if self.amp and self.device == "cpu":
            raise ValueError("amp=True needs a CUDA device; leave amp=None for automatic choice")
        return self


class EpochMetrics(BaseModel):
    """What a callback (CLI, dashboard) receives after every epoch."""

    epoch: int
    epochs: int
    train_loss: float
    lr: float
    metrics: dict[str, float]
    seconds: float
    is_best: bool
    monitor: str
    best_score: float | None


class TrainResult(BaseModel):
    best_epoch: int
    best_score: float
    monitor: str
    best_metrics: dict[str, float]
    history: list[EpochMetrics]
    checkpoint: str | None = None
    state_file: str | None = None
    seconds: float
    epochs_run: int
    stopped_early: bool
    world_size: int
    device: str
    amp_dtype: str | None = None
