from __future__ import annotations

import json

import typer
from typer.testing import CliRunner
from verticals.domains.medical import model_api
from verticals.domains.medical.cli import train_command


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(train_command)
    return app


def test_train_cv_passes_k_and_ship_writes_instead_of_registering(monkeypatch, db):
    seen = []

    def fake_train(task, data, nproc, seed, **options):
        seen.append(("train", task, options))
        return {"task": task, "version": "v1", "seconds": 1.0, "metrics": {"cv_roc_auc_mean": 0.9}}

    def fake_ship(task, seed, version, **options):
        seen.append(("ship", task, version, options))
        return {"cv_roc_auc_mean": 0.97, "cv_roc_auc_sd": 0.01}

    monkeypatch.setattr(model_api, "train_task", fake_train)
    monkeypatch.setattr(model_api, "ship_task", fake_ship)
    runner = CliRunner()
    result = runner.invoke(_cli(), ["--task", "breast", "--cv", "5", "--json"])
    assert result.exit_code == 0, result.output
    assert seen.pop() == ("train", "breast", {"cv": 5})

    result = runner.invoke(_cli(), ["--task", "pneumonia", "--cv", "5", "--epochs", "3",
                                    "--ship", "0.3.0", "--json"])
    assert result.exit_code == 0, result.output
    assert seen.pop() == ("ship", "pneumonia", "0.3.0", {"cv": 5, "data": None, "epochs": 3})
    payload = json.loads(result.output.strip().splitlines()[-1])
    assert payload == {"task": "pneumonia", "version": "0.3.0",
                       "metrics": {"cv_roc_auc_mean": 0.97, "cv_roc_auc_sd": 0.01}}

    assert runner.invoke(_cli(), ["--task", "breast", "--ship", "0.3.0"]).exit_code != 0
    assert runner.invoke(_cli(), ["--task", "breast", "--cv", "1"]).exit_code != 0
    assert not seen  # refused before any training
