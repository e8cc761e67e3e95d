"""`verticals compress finance/card-fraud-xgb`: the shipped booster against its ONNX form."""

from __future__ import annotations

import pytest
from verticals.core.compression.trees import compress_trees
from verticals.core.errors import InvalidInput


def test_shipped_model_native_and_onnx_agree_on_demo_data(db, plugins, tmp_path):
    finance = plugins.get("finance")
    target = finance.compression_target("card-fraud-xgb", None, "val")
    assert target is not None and target.version
    report = compress_trees(target, tmp_path, budget_s=0.05)
    native, onnx = report.variant("xgboost-native"), report.variant("onnx-fp32")
    assert report.metric_name == "average_precision"
    assert 0 < native.metric <= 1
    assert abs(onnx.metric - native.metric) < 1e-6
    assert finance.compression_target("other-model", None, "val") is None


def test_data_without_labels_is_refused(db, plugins, tmp_path):
    unlabeled = tmp_path / "tx.csv"
    unlabeled.write_text(
        "TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT\n"
        "1,2018-08-02 02:18:38,678,7970,36.5\n"
    )
    with pytest.raises(InvalidInput, match="TX_FRAUD"):
        plugins.get("finance").compression_target("card-fraud-xgb", unlabeled, "val")
