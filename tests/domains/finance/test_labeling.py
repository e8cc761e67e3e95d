"""Finance's active-learning learner, through ``verticals label simulate finance``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner
from verticals.core.labeling.cli import label_app
from verticals.domains.finance.labeling import simulation_learner


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(label_app(), name="label")  # as apps/cli/main.py mounts it
    return app


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    """Three months of a few cards; large amounts are mostly fraud, so there is a signal."""
    rng = np.random.default_rng(7)
    n = 3000
    offsets = np.sort(rng.integers(0, 91 * 86_400, size=n))
    amount = rng.gamma(2.0, 30.0, size=n).round(2)
    fraud = ((amount > 120) & (rng.random(n) < 0.8)) | (rng.random(n) < 0.01)
    frame = pd.DataFrame(
        {
            "TRANSACTION_ID": np.arange(n),
            "TX_DATETIME": pd.Timestamp("2018-04-01") + pd.to_timedelta(offsets, unit="s"),
            "CUSTOMER_ID": rng.integers(0, 40, size=n),
            "TERMINAL_ID": rng.integers(0, 30, size=n),
            "TX_AMOUNT": amount,
            "TX_FRAUD": fraud.astype(int),
        }
    )
    path = tmp_path_factory.mktemp("labeling") / "tiny.csv"
    frame.to_csv(path, index=False)
    return path


def test_pool_precedes_the_last_month_by_the_label_delay(tiny_file):
    learner = simulation_learner(None, tiny_file, None)
    assert "pool 2018-04-08..2018-05-24, evaluation 2018-06-01..2018-06-30" in learner.describe()
    costs = learner.costs()
    assert np.array_equal(costs.false_negative, learner.pool_amount)
    model = learner.fit(np.arange(learner.n_pool), learner.oracle(np.arange(learner.n_pool)), 0)
    scores = learner.score(model)
    assert scores["roc_auc"] > 0.8 and 0 < scores["average_precision"] <= 1


def test_label_simulate_finance_cost(tiny_file):
    result = CliRunner().invoke(
        _cli(),
        [
            "label",
            "simulate",
            "finance",
            "--strategy",
            "cost,random",
            "--budgets",
            "30,60",
            "--seeds",
            "1",
            "--data",
            str(tiny_file),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["metric"] == "average_precision"
    assert [r["budget"] for r in summary["strategies"]["cost"]] == [30, 60]
    assert 0.5 < summary["full_data_roc_auc"] <= 1
