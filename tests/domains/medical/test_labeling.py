"""Medical's active-learning learner (frozen random-convolution features, logistic regression),
through ``verticals label simulate medical``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner
from verticals.core.labeling.cli import label_app
from verticals.domains.medical.labeling import random_conv_features, simulation_learner


def _split(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, 2, n)
    images = rng.integers(0, 120, (n, 28, 28)).astype(np.uint8)
    images[labels == 1, 8:20, 8:20] += 120  # pneumonia (label 1): a bright patch
    return images, labels[:, None].astype(np.uint8)


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(label_app(), name="label")  # as apps/cli/main.py mounts it
    return app


@pytest.fixture(scope="module")
def npz(tmp_path_factory) -> Path:
    rng = np.random.default_rng(3)
    train_images, train_labels = _split(rng, 200)
    val_images, val_labels = _split(rng, 60)
    path = tmp_path_factory.mktemp("labeling") / "pneumoniamnist.npz"
    np.savez_compressed(
        path,
        train_images=train_images,
        train_labels=train_labels,
        val_images=val_images,
        val_labels=val_labels,
    )
    return path


def test_features_are_fixed_and_label_free():
    images = np.random.default_rng(0).random((3, 1, 28, 28)).astype(np.float32)
    first, second = random_conv_features(images), random_conv_features(images)
    assert first.shape == (3, 2048) and np.array_equal(first, second)


def test_pool_is_train_and_evaluation_is_val(npz):
    learner = simulation_learner("pneumonia", npz, None)
    assert learner.n_pool == 200 and len(learner.eval_y) == 60
    assert "train split" in learner.describe() and "val split" in learner.describe()
    assert learner.embed(np.arange(5)).shape == (5, 32)
    everything = np.arange(learner.n_pool)
    assert learner.score(learner.fit(everything, learner.oracle(everything), 0))["roc_auc"] > 0.95


def test_label_simulate_medical(npz):
    result = CliRunner().invoke(
        _cli(),
        [
            "label",
            "simulate",
            "medical",
            "--task",
            "pneumonia",
            "--strategy",
            "uncertainty",
            "--strategy",
            "diversity",
            "--budgets",
            "30,50",
            "--seeds",
            "2",
            "--data",
            str(npz),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert set(summary["strategies"]) == {"uncertainty", "diversity"}
    assert summary["full_data_roc_auc"] > 0.95
