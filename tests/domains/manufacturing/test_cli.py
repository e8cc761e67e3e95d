"""The CLI verbs, through the real ``verticals`` Typer app, on the test database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from .conftest import CMAPSS, DEMO_ENGINES

AI4I = CMAPSS.parent / "ai4i2020" / "ai4i2020.csv"
RUL_KEYS = {"rmse", "nasa_score", "coverage", "mean_interval_width", "interval_level", "n_units"}


def _cli():  # noqa: ANN202
    from verticals.apps.cli.main import build_cli

    return build_cli()


def _last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


@pytest.fixture
def demo_truth(tmp_path: Path) -> Path:
    """The true RUL of the 12 demo engines (units 1-12 of test_FD001)."""
    truth = CMAPSS / "RUL_FD001.txt"
    if not truth.is_file():
        pytest.skip(f"{truth} is not here (../shared/data)")
    path = tmp_path / "RUL_demo.txt"
    path.write_text("\n".join(truth.read_text().split()[:12]) + "\n")
    return path


@pytest.fixture
def ai4i_sample(tmp_path: Path) -> Path:
    if not AI4I.is_file():
        pytest.skip(f"{AI4I} is not here (../shared/data)")
    lines = AI4I.read_text(encoding="utf-8-sig").splitlines()
    path = tmp_path / "ai4i_sample.csv"
    path.write_text("\n".join(lines[:3001]) + "\n")
    return path


def test_evaluate_rul_prints_the_report_keys_last(service, demo_truth) -> None:
    result = CliRunner().invoke(
        _cli(),
        [
            "evaluate",
            "manufacturing",
            "--task",
            "rul",
            "--data",
            str(DEMO_ENGINES),
            "--truth",
            str(demo_truth),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = _last_json(result.stdout)
    assert set(metrics) == RUL_KEYS
    assert metrics["n_units"] == 12 and metrics["interval_level"] == pytest.approx(0.9)
    assert 0 < metrics["rmse"] < 40 and 0 <= metrics["coverage"] <= 1


def test_evaluate_rul_without_truth_is_a_usage_error(service) -> None:
    result = CliRunner().invoke(
        _cli(), ["evaluate", "manufacturing", "--task", "rul", "--data", str(DEMO_ENGINES)]
    )
    assert result.exit_code != 0 and "--truth" in result.output


def test_evaluate_failure_cross_validates(service, ai4i_sample) -> None:
    result = CliRunner().invoke(
        _cli(),
        [
            "evaluate",
            "manufacturing",
            "--task",
            "failure",
            "--data",
            str(ai4i_sample),
            "--cv",
            "2",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = _last_json(result.stdout)
    assert set(metrics) == {"f1", "roc_auc", "average_precision", "n"}
    assert metrics["n"] == 3000 and metrics["roc_auc"] > 0.8


def test_score_prints_one_line_per_unit(service) -> None:
    result = CliRunner().invoke(_cli(), ["score", "manufacturing", "--data", str(DEMO_ENGINES)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [line["unit"] for line in lines] == list(range(1, 13))
    assert all(line["rul_low"] <= line["rul"] <= line["rul_high"] for line in lines)


def test_train_failure_registers_through_the_gate_and_ships(service, ai4i_sample, tmp_path) -> None:
    from verticals.core.db import session_scope
    from verticals.core.registry import list_versions
    from verticals.core.registry.bundle import read_bundle

    result = CliRunner().invoke(
        _cli(),
        [
            "train",
            "manufacturing",
            "--task",
            "failure",
            "--data",
            str(ai4i_sample),
            "--version",
            "t1",
            "--cv",
            "0",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    trained = _last_json(result.stdout)
    assert trained["version"] == "t1" and "inner_f1" in trained["metrics"]
    assert isinstance(trained["promoted"], bool) and trained["production_before"]
    with session_scope() as session:
        versions = {
            v.version: v for v in list_versions(session, domain="manufacturing", name="failure")
        }
    assert versions["t1"].stage == ("production" if trained["promoted"] else "staging")
    shipped = CliRunner().invoke(
        _cli(),
        [
            "train",
            "manufacturing",
            "--task",
            "failure",
            "--data",
            str(ai4i_sample),
            "--version",
            "t2",
            "--cv",
            "0",
            "--ship",
            str(tmp_path / "ship"),
            "--json",
        ],
    )
    assert shipped.exit_code == 0, shipped.output
    bundle = read_bundle(tmp_path / "ship" / "failure" / "failure.card.json")
    assert bundle.card.version == "t2" and set(bundle.files) >= {"xgb", "profile"}


@pytest.mark.slow
def test_train_rul_quick_registers(service) -> None:
    data = CMAPSS / "train_FD001.txt"
    result = CliRunner().invoke(
        _cli(),
        [
            "train",
            "manufacturing",
            "--task",
            "rul",
            "--data",
            str(data),
            "--quick",
            "--version",
            "q1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "val_rmse" in _last_json(result.stdout)["metrics"]
