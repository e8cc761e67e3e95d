"""DDP plumbing: read the torchrun environment, init the process group, relaunch with torchrun
on this machine (``--standalone``) or as one node of several (c10d rendezvous, :class:`Rendezvous`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from verticals.core.errors import InvalidInput


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


_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)$")
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class Rendezvous:
    """Where this node meets the others: torchrun's c10d rendezvous.

    ``endpoint`` is ``HOST:PORT`` of node 0, which hosts the rendezvous store there; every node
    passes the same ``endpoint``, ``nnodes`` and ``run_id``. The global ranks are assigned by the
    rendezvous itself, so global rank 0 (the one process that writes results) runs on whichever
    node the rendezvous puts first, not necessarily node 0. Without an endpoint (one node) the job
    is ``--standalone``.
    """

    nnodes: int = 1
    node_rank: int = 0
    endpoint: str | None = None
    run_id: str = "verticals"
    timeout_s: int = 600  # how long a node waits for node 0's store and for the others to join

    def __post_init__(self) -> None:
        if self.nnodes < 1:
            raise InvalidInput(f"--nnodes must be >= 1, got {self.nnodes}")
        if not 0 <= self.node_rank < self.nnodes:
            raise InvalidInput(
                f"--node-rank must be in [0, {self.nnodes - 1}] for --nnodes {self.nnodes}, "
                f"got {self.node_rank}"
            )
        if self.endpoint is None:
            if self.nnodes > 1:
                raise InvalidInput(
                    f"--nnodes {self.nnodes} needs --rdzv-endpoint HOST:PORT (node 0's address)"
                )
        else:
            host, sep, port = self.endpoint.rpartition(":")
            if not sep or not _HOST.match(host) or not port.isdigit() or not 0 < int(port) < 65536:
                raise InvalidInput(
                    f"--rdzv-endpoint must be HOST:PORT with a port in 1-65535, "
                    f"got {self.endpoint!r}"
                )
        if not _RUN_ID.match(self.run_id):
            raise InvalidInput(
                f"--rdzv-id must be 1-128 letters, digits, '.', '_' or '-', got {self.run_id!r}"
            )
        if self.timeout_s < 1:
            raise InvalidInput(f"the rendezvous timeout must be >= 1 s, got {self.timeout_s}")

    @property
    def standalone(self) -> bool:
        """One node and no rendezvous endpoint: torchrun's ``--standalone``."""
        return self.endpoint is None

    def torchrun_args(self) -> list[str]:
        if self.standalone:
            return ["--standalone"]
        # No --node-rank: torchrun uses it only with the static backend (it warns that c10d
        # ignores it); here the node rank decides which node hosts the store.
        return [
            f"--nnodes={self.nnodes}",
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint={self.endpoint}",
            f"--rdzv-id={self.run_id}",
            # Node 0 hosts the store at the endpoint, the others only connect to it (not left to
            # torchrun's hostname guess, which on one machine has every node try to host it).
            # A node may start long before node 0 (pods scheduled apart): it waits as long to
            # connect (read_timeout) as to see everyone join.
            f"--rdzv-conf=is_host={int(self.node_rank == 0)},join_timeout={self.timeout_s},"
            f"read_timeout={self.timeout_s}",
        ]


def torchrun_command(
    module: str, args: list[str], nproc: int, rendezvous: Rendezvous | None = None
) -> list[str]:
    """``python -m torch.distributed.run RDZV --nproc-per-node N -m MODULE ARGS``.

    ``RDZV`` is ``--standalone`` without a ``rendezvous`` (or with a one-node one), else
    ``--nnodes N --rdzv-backend c10d --rdzv-endpoint HOST:PORT --rdzv-id ID --rdzv-conf ...``.
    """
    if nproc < 1:
        raise ValueError(f"nproc must be >= 1, got {nproc}")
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        *(rendezvous or Rendezvous()).torchrun_args(),
        f"--nproc-per-node={nproc}",
        "-m",
        module,
        *args,
    ]


def launch(
    module: str,
    args: list[str],
    nproc: int,
    *,
    env: dict[str, str] | None = None,
    rendezvous: Rendezvous | None = None,
) -> int:
    """Run ``module`` as a torchrun job of ``nproc`` processes on this node; return its exit code.

    With a multi-node ``rendezvous`` the same call must run on every node.
    """
    full_env = {**os.environ, **(env or {})}
    # Each worker gets its share of the cores instead of oversubscribing them.
    full_env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    return subprocess.call(torchrun_command(module, args, nproc, rendezvous), env=full_env)


ENTRY_MODULE = "verticals.core.training.entry"


def launch_function(
    target: str,
    kwargs: dict[str, Any],
    nproc: int,
    *,
    result_path: Path | None = None,
    rendezvous: Rendezvous | None = None,
) -> Any:
    """Run the function ``"package.module:function"`` with ``kwargs`` in ``nproc`` torchrun workers.

    Every worker calls ``function(**kwargs)`` (the function sets up DDP through the Trainer);
    global rank 0 writes the JSON-able return value to ``result_path``, which is read back and
    returned. With a multi-node ``rendezvous`` every node makes this call; the node that ran
    global rank 0 returns the value, the others return None.
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
            rendezvous=rendezvous,
        )
        if code != 0:
            raise RuntimeError(f"distributed job {target} failed with exit code {code}")
        return json.loads(out.read_text()) if out.is_file() else None
