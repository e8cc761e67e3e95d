def test_metrics_read_as_people_read_them():
    from verticals.core.registry.cards import format_metric, metrics_table

    assert [format_metric(v) for v in (5.0, 40.0, 0.99431397, 1234.5678, -2.0)] == [
        "5",
        "40",
        "0.9943",
        "1235",
        "-2",
    ]
    assert metrics_table({"cv_folds": 5.0, "auc": 0.9}) == [
        {"metric": "cv_folds", "value": "5"},
        {"metric": "auc", "value": "0.9"},
    ]
