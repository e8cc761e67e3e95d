"""The served fraud model: its lean prediction path equals XGBoost's name-checked one."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def model(db):
    from verticals.domains.finance.model.production import (
        ensure_production_model,
        load_model,
        production_entry,
    )

    ensure_production_model()
    return load_model(production_entry(), nthread=2)


def test_contributions_match_a_named_dmatrix_prediction(model) -> None:
    """Serving builds its DMatrix without feature names (XGBoost's per-call name checks cost
    more than a small batch); the columns it picks must still be the booster's, in order."""
    import xgboost

    rng = np.random.default_rng(3)
    X = rng.gamma(2.0, 20.0, size=(40, len(model.feature_names)))
    probabilities, contributions = model.predict_with_contributions(X)

    named = xgboost.DMatrix(
        X[:, [model.feature_names.index(n) for n in model.meta.used_features]],
        feature_names=model.meta.used_features,
    )
    reference = model.booster.predict(named, pred_contribs=True, validate_features=True)
    np.testing.assert_allclose(contributions, reference[:, :-1], rtol=1e-5, atol=1e-6)
    margin = model.booster.predict(named, output_margin=True, validate_features=True)
    np.testing.assert_allclose(
        probabilities, model.meta.calibration.apply(margin), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(model.predict(X), probabilities, rtol=1e-5, atol=1e-6)


def test_feature_rows_of_the_wrong_width_are_refused(model) -> None:
    with pytest.raises(ValueError, match="features"):
        model.predict(np.zeros((2, len(model.feature_names) - 1)))


def test_scoring_predicts_on_one_thread_unless_configured(db, monkeypatch) -> None:
    from verticals.domains.finance.plugin import FinanceDomain
    from verticals.domains.finance.settings import ServingConfig, serving_config

    assert ServingConfig().predict_threads == 1
    monkeypatch.setenv("VERTICALS_FINANCE_PREDICT_THREADS", "0")
    with pytest.raises(ValueError, match="predict_threads"):
        ServingConfig()

    monkeypatch.setenv("VERTICALS_FINANCE_PREDICT_THREADS", "4")
    serving_config.cache_clear()
    domain = FinanceDomain()
    domain.ensure_production_model()
    domain.setup()
    try:
        assert domain.runtime().service.model.nthread == 4  # the served model uses the setting
    finally:
        domain.close()
        serving_config.cache_clear()
