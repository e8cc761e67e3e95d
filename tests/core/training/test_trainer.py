from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import load_file
from torch import nn
from verticals.core.training import (
    EpochMetrics,
    TrainConfig,
    Trainer,
    amp_dtype_for,
    load_weights,
    pick_device,
    seed_everything,
)
from verticals.core.training.selfcheck import synthetic_data
from verticals.core.training.trainer import _schedule


def _accuracy(outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    return {"val_accuracy": float(np.mean((outputs > 0) == (targets > 0.5)))}


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))


def _trainer(tmp_path=None, model=None, **overrides) -> Trainer:
    settings = dict(epochs=4, batch_size=32, lr=1e-2, monitor="val_accuracy", mode="max",
                    progress=False, num_threads=1)
    settings.update(overrides)
    return Trainer(
        model or _mlp(),
        synthetic_data(512, 0),
        synthetic_data(256, 1),
        nn.BCEWithLogitsLoss(),
        TrainConfig(**settings),
        metrics_fn=_accuracy,
        output_dir=tmp_path,
    )


def test_device_and_amp_choice_on_cpu():
    if torch.cuda.is_available():
        pytest.skip("CPU-only expectations")
    assert pick_device() == torch.device("cpu")
    assert amp_dtype_for(torch.device("cpu"), None) is None
    assert amp_dtype_for(torch.device("cpu"), True) is None


def test_config_validates():
    with pytest.raises(ValidationError):
        TrainConfig(amp=True, device="cpu")
    with pytest.raises(ValidationError):
        TrainConfig(epochs=0)
    with pytest.raises(ValidationError):
        TrainConfig(unknown_option=1)


def test_fit_learns_and_writes_best_checkpoint(tmp_path):
    trainer = _trainer(tmp_path)
    result = trainer.fit()
    assert result.best_score > 0.8  # Bayes accuracy of the synthetic task is about 0.92
    assert result.epochs_run == 4 and len(result.history) == 4
    assert result.best_metrics["val_accuracy"] == result.best_score
    weights = tmp_path / "best.safetensors"
    assert weights.is_file() and result.checkpoint == str(weights)
    state = json.loads((tmp_path / "best.json").read_text())
    assert state["epoch"] == result.best_epoch
    assert state["metrics"]["val_accuracy"] == pytest.approx(result.best_score)
    assert state["config"]["lr"] == 1e-2
    # the trainer hands back the best epoch's weights, identical to the checkpoint
    tensors = load_file(str(weights))
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(tensors[name], value)
    restored = load_weights(_mlp(seed=5), weights)
    assert torch.equal(restored.state_dict()["0.weight"], tensors["0.weight"])


def test_same_seed_same_weights():
    a = _trainer(epochs=2).fit()
    b = _trainer(epochs=2).fit()
    assert [h.metrics for h in a.history] == [h.metrics for h in b.history]
    c = _trainer(epochs=2, seed=1).fit()
    assert [h.train_loss for h in c.history] != [h.train_loss for h in a.history]


def test_gradient_accumulation_matches_the_large_batch():
    def run(batch: int, accum: int) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        model = nn.Linear(8, 1)
        Trainer(
            model, synthetic_data(256, 0), None, nn.BCEWithLogitsLoss(),
            TrainConfig(epochs=2, batch_size=batch, grad_accum_steps=accum, lr=0.1,
                        optimizer="sgd", momentum=0.0, weight_decay=0.0, monitor="train_loss",
                        progress=False, warmup_frac=0.0),
        ).fit()
        return model.state_dict()

    big, accumulated = run(32, 1), run(16, 2)
    for name in big:
        torch.testing.assert_close(big[name], accumulated[name], rtol=1e-5, atol=1e-6)


def test_early_stopping_and_callbacks():
    seen: list[EpochMetrics] = []
    trainer = Trainer(
        _mlp(), synthetic_data(128, 0), synthetic_data(64, 1), nn.BCEWithLogitsLoss(),
        TrainConfig(epochs=20, batch_size=32, monitor="constant", mode="max", patience=2,
                    progress=False),
        metrics_fn=lambda outputs, targets: {"constant": 1.0},
        callbacks=[seen.append],
    )
    result = trainer.fit()
    assert result.stopped_early and result.epochs_run == 3 and result.best_epoch == 1
    assert [m.epoch for m in seen] == [1, 2, 3]
    assert seen[0].is_best and not seen[1].is_best
    assert seen[-1].metrics["constant"] == 1.0 and "val_loss" in seen[-1].metrics


def test_time_budget_stops_after_the_epoch():
    result = _trainer(epochs=50, max_seconds=1e-6).fit()
    assert result.epochs_run == 1 and result.stopped_early


def test_unknown_monitor_is_rejected():
    with pytest.raises(ValueError, match="monitor"):
        _trainer(monitor="val_f1").fit()


def test_schedule_warms_up_then_decays():
    factor = _schedule(TrainConfig(warmup_frac=0.1), total_steps=100)
    assert factor(0) == pytest.approx(0.1)
    assert factor(9) == pytest.approx(1.0)
    assert factor(10) == pytest.approx(1.0)
    assert factor(55) == pytest.approx(0.5, abs=0.01)
    assert factor(99) < 0.01
    assert _schedule(TrainConfig(schedule="constant", warmup_frac=0), 10)(7) == 1.0


def test_seed_everything_is_reproducible():
    seed_everything(3)
    a = torch.rand(3), np.random.rand()
    seed_everything(3)
    b = torch.rand(3), np.random.rand()
    assert torch.equal(a[0], b[0]) and a[1] == b[1]
    with pytest.raises(ValueError):
        seed_everything(-1)


def test_validation_loss_is_finite_and_checkpoint_written_only_with_output_dir():
    result = _trainer(None, epochs=1).fit()
    assert result.checkpoint is None
    assert math.isfinite(result.history[0].metrics["val_loss"])
