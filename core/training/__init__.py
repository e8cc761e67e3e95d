"""Domain-free training: a torch Trainer (AMP, DDP through torchrun, early stopping,
safetensors checkpoints) and the launcher that relaunches an entry through torchrun, on one node
or as one of several (c10d rendezvous).

Names are imported lazily so that ``verticals.core.training.xgb`` does not pull in torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "load_weights": "checkpoint",
    "save_checkpoint": "checkpoint",
    "unwrap": "checkpoint",
    "EpochMetrics": "config",
    "TrainConfig": "config",
    "TrainResult": "config",
    "DistContext": "distributed",
    "Rendezvous": "distributed",
    "context_from_env": "distributed",
    "destroy_distributed": "distributed",
    "is_main_process": "distributed",
    "launch": "distributed",
    "launch_function": "distributed",
    "torchrun_command": "distributed",
    "seed_everything": "seed",
    "Trainer": "trainer",
    "amp_dtype_for": "trainer",
    "pick_device": "trainer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
