"""``verticals backtest finance``: month folds, per-fold and mean metrics, JSON last."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner
from verticals.domains.finance.model.backtest import month_window


def _cli():
    from verticals.apps.cli.main import build_cli

    return build_cli()


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    """Three months of a few cards; large amounts are mostly fraud, so there is a signal."""
    rng = np.random.default_rng(7)
    n = 3000
    start = pd.Timestamp("2018-04-01")
    offsets = np.sort(rng.integers(0, 91 * 86_400, size=n))
    amount = rng.gamma(2.0, 30.0, size=n).round(2)
    fraud = ((amount > 120) & (rng.random(n) < 0.8)) | (rng.random(n) < 0.01)
    frame = pd.DataFrame(
        {
            "TRANSACTION_ID": np.arange(n),
            "TX_DATETIME": start + pd.to_timedelta(offsets, unit="s"),
            "CUSTOMER_ID": rng.integers(0, 40, size=n),
            "TERMINAL_ID": rng.integers(0, 30, size=n),
            "TX_AMOUNT": amount,
            "TX_FRAUD": fraud.astype(int),
        }
    )
    path = tmp_path_factory.mktemp("backtest") / "tiny.csv"
    frame.to_csv(path, index=False)
    return path


def test_backtest_reports_each_fold_and_their_mean(tiny_file: Path) -> None:
    result = CliRunner().invoke(
        _cli(),
        [
            "backtest", "finance", "--data", str(tiny_file),
            "--folds", "2018-05,2018-06", "--grid", "quick", "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["selected"] == "quick-d3" and list(out["folds"]) == ["2018-05", "2018-06"]
    for metrics in out["folds"].values():
        assert set(metrics) == {"average_precision", "roc_auc", "card_precision_at_100"}
        assert 0.5 < metrics["roc_auc"] <= 1.0
    for key in ("average_precision", "roc_auc", "card_precision_at_100"):
        values = [m[key] for m in out["folds"].values()]
        assert out["mean"][key] == pytest.approx(np.mean(values))
        assert out["std"][key] == pytest.approx(np.std(values))
    assert out["rounds"] in (25, 30)  # the round count is chosen by the fold mean too
    assert set(out["candidates"]) == {"quick-d3"}


@pytest.mark.parametrize(
    ("folds", "message"),
    [("2018-13", "not a month"), ("2018-04", "no training days"), ("2019-01", "no transactions")],
)
def test_bad_folds_are_clear_errors(tiny_file: Path, folds: str, message: str) -> None:
    result = CliRunner().invoke(
        _cli(),
        ["backtest", "finance", "--data", str(tiny_file), "--folds", folds, "--grid", "quick"],
    )
    assert result.exit_code != 0
    assert message in result.output


def test_month_window_is_the_calendar_month() -> None:
    first, end = month_window("2018-02")
    assert end - first == 28
    assert str(pd.Timestamp(first * 86_400, unit="s").date()) == "2018-02-01"
