"""The CLI verbs, through the real ``verticals`` Typer app, on the test database."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner
from verticals.shared_models.finance import DEMO_FILE

KEYS = {"roc_auc", "average_precision", "card_precision_at_100", "n_transactions", "n_frauds"}


def _cli():
    from verticals.apps.cli.main import build_cli

    return build_cli()


def test_evaluate_prints_metrics_json_last(db) -> None:
    result = CliRunner().invoke(
        _cli(),
        ["evaluate", "finance", "--data", str(DEMO_FILE), "--from", "2018-08-15", "--json"],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(metrics) == KEYS
    demo = pd.read_csv(DEMO_FILE)
    after = demo[pd.to_datetime(demo["TX_DATETIME"]) >= "2018-08-15"]
    assert metrics["n_transactions"] == len(after)
    assert metrics["n_frauds"] == int(after["TX_FRAUD"].sum())
    assert 0.5 < metrics["roc_auc"] <= 1.0


def test_score_writes_probabilities(db, tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    result = CliRunner().invoke(
        _cli(), ["score", "finance", "--data", str(DEMO_FILE), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(out)
    assert len(scores) == len(pd.read_csv(DEMO_FILE))
    assert scores["fraud_probability"].between(0, 1).all()
    assert "TX_FRAUD_SCENARIO" not in scores.columns


def test_train_quick_registers_and_compares_with_production(db) -> None:
    from verticals.core.db import session_scope
    from verticals.core.registry import list_versions

    result = CliRunner().invoke(
        _cli(),
        [
            "train", "finance", "--data", str(DEMO_FILE), "--grid", "quick",
            "--valid-days", "7", "--test-days", "7", "--gap-days", "3",
            "--selection-folds", "1", "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"validation", "report", "version", "promoted"} <= set(summary)
    with session_scope() as s:
        versions = {v.version: v for v in list_versions(s, domain="finance")}
    assert summary["version"] in versions  # registered next to the shipped baseline
    new = versions[summary["version"]]
    # the options given, in declared order: not the test runner's sys.argv
    assert new.card.reproduce_command == (
        f"verticals train finance --data {DEMO_FILE} --valid-days 7 --test-days 7 "
        "--gap-days 3 --selection-folds 1 --grid quick --json"
    )
    assert (new.stage == "production") == summary["promoted"]
    assert Path(new.artifact_path).suffix == ".ubj"


def test_bad_data_file_is_a_clear_error(db, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("TRANSACTION_ID,TX_DATETIME\n1,2018-01-01\n")
    result = CliRunner().invoke(_cli(), ["evaluate", "finance", "--data", str(bad)])
    assert result.exit_code != 0
    assert "missing columns" in str(result.exception) or "missing columns" in result.output
