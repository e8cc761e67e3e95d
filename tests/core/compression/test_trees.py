"""XGBoost against its ONNX conversion, through the same command report as the nets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from sklearn.metrics import roc_auc_score
from verticals.core.compression.trees import TreeCompressionTarget, compress_trees
from verticals.core.errors import IntegrityError


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    y = ((x[:, 0] + 0.5 * x[:, 1] * x[:, 2] + rng.normal(0, 0.5, n)) > 0.8).astype(np.int64)
    return x, y


@pytest.fixture(scope="module")
def target() -> TreeCompressionTarget:
    x, y = _data(2000, 0)
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 4, "nthread": 1, "tree_method": "hist"},
        xgb.DMatrix(x, label=y),
        num_boost_round=40,
    )
    x_val, y_val = _data(500, 1)

    def metric(predict) -> tuple[float, str]:
        return float(roc_auc_score(y_val, predict(x_val))), "roc_auc"

    return TreeCompressionTarget(name="testdomain/trees", booster=booster, rows=x, metric=metric)


def test_native_and_onnx_are_measured_and_agree(target, tmp_path: Path):
    report = compress_trees(target, tmp_path, budget_s=0.2)
    native, onnx = report.variant("xgboost-native"), report.variant("onnx-fp32")
    assert report.baseline_metric > 0.8
    assert abs(onnx.metric - native.metric) < 1e-6
    for v in (native, onnx):
        assert v.bytes > 0 and v.latency_ms_b1 > 0 and v.latency_ms_b32 > 0
        assert Path(v.path).is_file()
    assert onnx.notes.startswith(("use it", "not used"))
    assert report.summary()["variants"][0]["name"] == "xgboost-native"


def test_a_conversion_that_differs_is_refused(target, tmp_path: Path, monkeypatch):
    from verticals.core.compression import trees

    monkeypatch.setattr(trees, "_positive_scores", lambda outputs: np.zeros(len(outputs[0])))
    with pytest.raises(IntegrityError, match="differs"):
        compress_trees(target, tmp_path, budget_s=0.05)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"name": "no-domain"}, "name"), ({"max_metric_drop": 1.5}, "max_metric_drop")],
)
def test_tree_target_is_validated_like_every_target(target, overrides, message):
    fields = {"name": target.name, "booster": target.booster, "rows": target.rows,
              "metric": target.metric, **overrides}
    with pytest.raises(ValueError, match=message):
        TreeCompressionTarget(**fields)


def test_metric_drop_follows_the_metric_direction(target):
    assert target.metric_drop(0.9, 0.85) == pytest.approx(0.05)
    lower = TreeCompressionTarget(name=target.name, booster=target.booster, rows=target.rows,
                                  metric=target.metric, higher_is_better=False)
    assert lower.metric_drop(0.9, 0.85) == pytest.approx(-0.05)
