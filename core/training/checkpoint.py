"""Checkpoints: weights as safetensors (no pickle) plus a JSON state file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load, load_file, save_file
from torch import nn


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under a DDP / DataParallel wrapper."""
    inner = getattr(model, "module", None)
    return inner if isinstance(inner, nn.Module) else model


def state_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """A CPU, contiguous copy of the state dict (safetensors refuses shared/strided storage)."""
    return {
        name: tensor.detach().to("cpu").contiguous().clone()
        for name, tensor in unwrap(model).state_dict().items()
    }


def save_checkpoint(
    model: nn.Module,
    weights_path: Path,
    state: dict[str, Any] | None = None,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write ``weights_path`` (safetensors) and, when ``state`` is given, ``<stem>.json`` beside it.

    The write goes to a temporary file first so a crash never leaves a half-written checkpoint.
    """
    weights_path = Path(weights_path)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = weights_path.with_suffix(".tmp")
    save_file(state_tensors(model), str(tmp), metadata=metadata)
    tmp.replace(weights_path)
    if state is not None:
        state_path(weights_path).write_text(json.dumps(state, indent=2, default=str))
    return weights_path


def state_path(weights_path: Path) -> Path:
    return Path(weights_path).with_suffix(".json")


def load_weights(model: nn.Module, weights_path: Path | bytes, *, strict: bool = True) -> nn.Module:
    """Load safetensors weights into ``model`` (CPU tensors; moved by ``load_state_dict``).

    ``weights_path`` may be the file's bytes (as returned by the verifying loader's
    ``read_verified``): the weights loaded are then exactly the bytes that were checked.
    """
    if isinstance(weights_path, bytes | bytearray):
        tensors = load(bytes(weights_path))
    else:
        tensors = load_file(str(weights_path), device="cpu")
    unwrap(model).load_state_dict(tensors, strict=strict)
    return model
