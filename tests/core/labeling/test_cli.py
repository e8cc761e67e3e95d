"""``verticals label simulate``: human lines per strategy and budget, the JSON summary last."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
import verticals.core.plugins as plugins
from typer.testing import CliRunner
from verticals.core.labeling.cli import label_app
from verticals.core.plugins import PluginRegistry


class TinyLearner:
    metric = "roc_auc"
    n_pool = 300

    def __init__(self) -> None:
        self.x = np.random.default_rng(1).uniform(-1, 1, self.n_pool)

    def fit(self, indices, labels, seed):
        return float(self.x[indices][labels == 1].min(initial=1.0))

    def predict_proba(self, model, indices):
        return 1 / (1 + np.exp(-(self.x[indices] - model) * 10))

    def embed(self, indices):
        return self.x[indices, None]

    def score(self, model):
        return {"roc_auc": 1.0 - abs(model - 0.2), "average_precision": 0.5}

    def oracle(self, indices):
        return (self.x[indices] > 0.2).astype(np.int64)

    def costs(self):
        return None

    def describe(self):
        return "tiny"


class FakeDomain:
    def labeling_learner(self, task, data, eval_data):
        return TinyLearner() if task != "none" else None


def invoke(args: list[str]):
    app = typer.Typer()
    app.add_typer(label_app(), name="label")  # mounted as the CLI mounts it
    return CliRunner().invoke(app, ["label", "simulate", "toy", *args])


@pytest.fixture(autouse=True)
def fake_plugins(monkeypatch):
    monkeypatch.setattr(plugins, "discover", lambda: PluginRegistry(domains={"toy": FakeDomain()}))


def test_simulate_prints_figures_and_the_json_line():
    result = invoke(
        [
            "--strategy",
            "uncertainty,random",
            "--strategy",
            "hybrid",
            "--budgets",
            "20,40",
            "--seeds",
            "2",
            "--initial",
            "10",
            "--warm-start",
            "20",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    summary = json.loads(lines[-1])
    assert list(summary["strategies"]) == ["uncertainty", "random", "hybrid"]
    row = summary["strategies"]["random"][1]
    assert row["budget"] == 40 and {"roc_auc_mean", "roc_auc_sd"} <= set(row)
    assert "full_data_roc_auc" in summary and summary["initial_labelled"]["size"] == 10
    assert any(line.startswith("hybrid       budget     40: roc_auc") for line in lines)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "entropy"], "unknown active-learning strategy"),
        (["--strategy", "random", "--budgets", "40,20"], "ascending"),
        (["--strategy", "random", "--task", "none"], "offers no labeling learner"),
    ],
)
def test_bad_requests_are_refused(args, message):
    result = invoke(["--budgets", "20,40", *args])
    assert result.exit_code != 0
    assert message in str(result.exception)
