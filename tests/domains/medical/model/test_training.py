from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from verticals.core.db import session_scope
from verticals.core.errors import InvalidInput
from verticals.core.registry import list_versions, production_version
from verticals.domains.medical.model import ensure_production_models, load_classifier, train_task
from verticals.domains.medical.model.training import RECIPES


def _tiny_npz(tmp_path: Path, n: int = 96) -> Path:
    """Bright-centre images are class 1: learnable in one epoch."""
    rng = np.random.default_rng(0)
    labels = (np.arange(n) % 2).astype(np.uint8)
    images = (rng.random((n, 28, 28)) * 80).astype(np.uint8)
    images[labels == 1, 9:19, 9:19] += 150
    path = tmp_path / "tiny.npz"
    np.savez(path, train_images=images, train_labels=labels[:, None],
             val_images=images[:32], val_labels=labels[:32, None])
    return path


def test_train_registers_and_promotes_only_when_better(db, tmp_path, monkeypatch):
    monkeypatch.setitem(RECIPES, "pneumonia", RECIPES["pneumonia"].model_copy(
        update={"batch_size": 16, "val_fraction": 0.25}))
    seen = []
    report = train_task("pneumonia", _tiny_npz(tmp_path), 1, 0, epochs=2, progress=False,
                        callbacks=[seen.append])
    assert [m.epoch for m in seen][:1] == [1] and report.epochs_run == len(seen)
    assert report.registered and report.promoted  # nothing was in production
    assert report.world_size == 1 and report.init_from is None
    assert {"val_roc_auc", "official_val_roc_auc", "decision_threshold"} <= set(report.metrics)
    assert load_classifier("pneumonia").version == report.version
    with session_scope() as session:
        row = production_version(session, "medical", "pneumonia")
    assert row.card.reproduce_command.startswith("verticals train medical --task pneumonia")
    assert Path(row.artifact_path).with_suffix(".json").is_file()  # trainer state kept


def test_worse_model_is_registered_but_not_promoted(db, tmp_path, monkeypatch):
    ensure_production_models()
    monkeypatch.setitem(RECIPES, "breast", RECIPES["breast"].model_copy(
        update={"batch_size": 16, "val_fraction": 0.25}))
    noise = tmp_path / "noise.npz"
    rng = np.random.default_rng(1)
    np.savez(noise, train_images=(rng.random((64, 28, 28)) * 255).astype(np.uint8),
             train_labels=(np.arange(64) % 2)[:, None])
    report = train_task("breast", noise, 1, 0, epochs=1, init_from="pneumonia", progress=False)
    assert report.init_from == "pneumonia" and report.registered
    assert "official_val_roc_auc" not in report.metrics  # the file has no val split
    with session_scope() as session:
        stages = {v.version: v.stage for v in list_versions(session, "medical", "breast")}
    assert stages[report.version] == ("production" if report.promoted else "staging")


def test_breast_recipe_trains_from_scratch_and_averages_weights():
    recipe = RECIPES["breast"]  # see the transfer study: scratch beats fine-tuning here
    assert recipe.init_from is None and recipe.average_last and recipe.patience is None


def test_train_rejects_bad_arguments(tmp_path):
    with pytest.raises(InvalidInput):
        train_task("breast", _tiny_npz(tmp_path), init_from="breast", register=False)
    with pytest.raises(InvalidInput):
        train_task("breast", _tiny_npz(tmp_path), init_from="/no/such.bin", register=False)
    with pytest.raises(InvalidInput):
        train_task("pneumonia", tmp_path / "missing.npz", register=False)


def test_weight_averaging_serves_the_mean_of_the_last_epochs(tmp_path, monkeypatch):
    from safetensors import safe_open

    monkeypatch.setitem(RECIPES, "pneumonia", RECIPES["pneumonia"].model_copy(
        update={"batch_size": 16, "val_fraction": 0.25, "average_last": 2, "patience": None}))
    run_dir = tmp_path / "run"
    report = train_task("pneumonia", _tiny_npz(tmp_path), 1, 0, epochs=3, register=False,
                        progress=False, output_dir=run_dir)
    assert report.averaged_epochs == 2 and report.input_size == 28
    assert report.metrics["val_roc_auc"] > 0.9  # the averaged model is the one scored
    with safe_open(str(run_dir / "best.safetensors"), "pt") as weights:  # ...and the one written
        assert weights.metadata()["averaged_epochs"] == "2"


def test_transfer_study_runs_both_arms(tmp_path, monkeypatch):
    from verticals.domains.medical.model.transfer_study import run_study

    monkeypatch.setitem(RECIPES, "breast", RECIPES["breast"].model_copy(
        update={"batch_size": 16, "val_fraction": 0.25}))
    result = run_study("breast", "pneumonia", [0, 1], epochs=1, data=_tiny_npz(tmp_path),
                       log=lambda line: None)
    assert [r["arm"] for r in result["rows"]] == ["scratch", "finetune_from_pneumonia"] * 2
    assert set(result["summary"]) == {"scratch", "finetune_from_pneumonia"}
    scratch, tuned = result["summary"]["scratch"], result["summary"]["finetune_from_pneumonia"]
    assert result["gain"] == tuned["mean"] - scratch["mean"] and scratch["std"] >= 0
