"""`verticals train medical --nnodes N --node-rank R --rdzv-endpoint HOST:PORT`: the flags reach
training as one validated rendezvous; bad ones are refused before anything starts."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner
from verticals.core.errors import InvalidInput
from verticals.core.training import Rendezvous
from verticals.domains.medical import model_api
from verticals.domains.medical.cli import train_command


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(train_command)
    return app


@pytest.fixture
def seen(monkeypatch) -> list:
    calls: list = []

    def fake_train(task, data, nproc, seed, **options):
        calls.append((task, nproc, options))
        rendezvous = options.get("rendezvous")
        if rendezvous is not None and rendezvous.node_rank == 1:
            return None  # as on a node whose workers did not include global rank 0
        return {"task": task, "version": "v1", "seconds": 1.0, "metrics": {"val_roc_auc": 0.9}}

    monkeypatch.setattr(model_api, "train_task", fake_train)
    return calls


def test_the_flags_become_one_rendezvous(seen, db):
    runner = CliRunner()
    flags = [
        "--task",
        "pneumonia",
        "--nnodes",
        "2",
        "--rdzv-endpoint",
        "train-0.train:29400",
        "--rdzv-id",
        "job-7",
        "--json",
    ]
    result = runner.invoke(_cli(), [*flags, "--node-rank", "0", "--nproc", "2"])
    assert result.exit_code == 0, result.output
    task, nproc, options = seen.pop()
    assert (task, nproc) == ("pneumonia", 2)
    assert options["rendezvous"] == Rendezvous(2, 0, "train-0.train:29400", "job-7")
    assert json.loads(result.output.strip().splitlines()[-1])["version"] == "v1"

    result = runner.invoke(_cli(), [*flags, "--node-rank", "1"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1]) == {
        "role": "worker",
        "node_rank": 1,
        "nnodes": 2,
    }

    result = runner.invoke(_cli(), ["--task", "pneumonia", "--json"])
    assert result.exit_code == 0, result.output
    assert "rendezvous" not in seen.pop()[2]  # one node: no rendezvous at all


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--nnodes", "2", "--node-rank", "2", "--rdzv-endpoint", "h:29400"], "--node-rank"),
        (["--nnodes", "2", "--node-rank", "1"], "--rdzv-endpoint"),
        (["--nnodes", "2", "--rdzv-endpoint", "h"], "HOST:PORT"),
        (["--nnodes", "0"], "--nnodes"),
        (["--nnodes", "2", "--rdzv-endpoint", "h:1", "--cv", "5", "--ship", "0.9.0"], "--ship"),
    ],
)
def test_bad_flags_are_refused_before_training(seen, flags, says):
    result = CliRunner().invoke(_cli(), ["--task", "pneumonia", *flags])
    assert isinstance(result.exception, InvalidInput), result.output
    assert says in result.exception.message
    assert not seen
