from __future__ import annotations

import sys

import pytest
from verticals.core.training import context_from_env, is_main_process, torchrun_command
from verticals.core.training.distributed import ENTRY_MODULE, launch_function
from verticals.core.training.selfcheck import train_synthetic


def test_context_outside_torchrun(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    ctx = context_from_env()
    assert (ctx.rank, ctx.world_size, ctx.distributed, ctx.is_main) == (0, 1, False, True)
    assert is_main_process()


def test_context_from_torchrun_env(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    ctx = context_from_env()
    assert ctx.distributed and not ctx.is_main and ctx.local_rank == 1
    assert not is_main_process()
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError):
        context_from_env()


def test_torchrun_command():
    cmd = torchrun_command(ENTRY_MODULE, ["--x", "1"], 3)
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--nproc-per-node=3" in cmd and "--standalone" in cmd
    assert cmd[-4:] == ["-m", ENTRY_MODULE, "--x", "1"]
    with pytest.raises(ValueError):
        torchrun_command(ENTRY_MODULE, [], 0)
    with pytest.raises(ValueError):
        launch_function("no_colon_here", {}, 2)


def test_two_process_ddp_converges_like_one_process(tmp_path):
    """A real 2-process gloo job through torchrun reaches the 1-process metric."""
    kwargs = {"seed": 0, "epochs": 5, "n": 2048}
    single = train_synthetic(**kwargs)
    double = launch_function(
        "verticals.core.training.selfcheck:train_synthetic",
        {**kwargs, "output_dir": str(tmp_path)},
        nproc=2,
    )
    assert single.world_size == 1 and double["world_size"] == 2
    assert double["best_score"] > 0.85
    assert abs(double["best_score"] - single.best_score) < 0.03
    # only rank 0 wrote artifacts, once
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.json", "best.safetensors"]
