"""DDP plumbing: read the torchrun environment, init the process group, relaunch with torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def context_from_env() -> DistContext:
    """The process's place in a torchrun job (rank 0 of 1 when not launched by torchrun)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", str(rank)))
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"inconsistent torchrun environment: RANK={rank} WORLD_SIZE={world}")
    return DistContext(rank=rank, local_rank=local, world_size=world)


def is_main_process() -> bool:
    """True on rank 0 (or when not distributed): the only process that writes artifacts."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return context_from_env().is_main


def init_distributed(ctx: DistContext, device: torch.device) -> bool:
    """Join the process group (NCCL on CUDA, gloo on CPU). Returns True when this call created it."""
    if not ctx.distributed or dist.is_initialized():
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend, rank=ctx.rank, world_size=ctx.world_size)
    return True


def destroy_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def torchrun_command(module: str, args: list[str], nproc: int) -> list[str]:
    """``python -m torch.distributed.run --standalone --nproc-per-node N -m MODULE ARGS``."""
    if nproc < 1:
        raise ValueError(f"nproc must be >= 1, got {nproc}")
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        module,
        *args,
    ]


def launch(module: str, args: list[str], nproc: int, *, env: dict[str, str] | None = None) -> int:
    """Run ``module`` as a torchrun job of ``nproc`` local processes; return its exit code."""
    full_env = {**os.environ, **(env or {})}
    # Each worker gets its share of the cores instead of oversubscribing them.
    full_env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    return subprocess.call(torchrun_command(module, args, nproc), env=full_env)


ENTRY_MODULE = "verticals.core.training.entry"


def launch_function(
    target: str, kwargs: dict[str, Any], nproc: int, *, result_path: Path | None = None
) -> Any:
    """Run the function ``"package.module:function"`` with ``kwargs`` in ``nproc`` torchrun workers.

    Every worker calls ``function(**kwargs)`` (the function sets up DDP through the Trainer);
    rank 0 writes the JSON-able return value to ``result_path``, which is read back and returned.
    """
    if ":" not in target:
        raise ValueError(f"target must look like 'package.module:function', got {target!r}")
    import tempfile

    with tempfile.TemporaryDirectory(prefix="verticals-launch-") as tmp:
        out = Path(result_path) if result_path else Path(tmp) / "result.json"
        code = launch(
            ENTRY_MODULE,
            ["--target", target, "--kwargs", json.dumps(kwargs), "--result", str(out)],
            nproc,
        )
        if code != 0:
            raise RuntimeError(f"distributed job {target} failed with exit code {code}")
        return json.loads(out.read_text()) if out.is_file() else None
