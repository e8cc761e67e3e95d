"""A database whose production model came from an older release gets the newly shipped one the
way a training run would: promoted over an older shipped baseline or a worse model, never over a
better locally trained one; a model trained on the previous 19 features still serves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from verticals.core.db import session_scope
from verticals.core.registry import ModelCard, list_versions, register
from verticals.domains.finance.model import production
from verticals.domains.finance.model.features import feature_names, previous_feature_names
from verticals.domains.finance.model.fraud_model import FraudModel, ModelMeta
from verticals.domains.finance.settings import MODEL_NAME, FeatureConfig


def _old_model(path: Path) -> FraudModel:
    """A small model of the kind releases up to 2026.11 shipped: 19 feature columns."""
    from verticals.core.training.xgb import XGBParams, train_booster

    cfg = FeatureConfig()
    names = previous_feature_names(cfg)
    rng = np.random.default_rng(0)
    X = rng.gamma(2.0, 20.0, size=(200, len(names)))
    y = (X[:, 0] > 50).astype(int)
    res = train_booster(X, y, XGBParams(max_depth=2, n_rounds=5, nthread=1), feature_names=names)
    meta = ModelMeta(
        feature_names=names, used_features=names, feature_config=cfg.model_dump(mode="json")
    )
    model = FraudModel(res.booster, meta)
    model.save(path)
    return model


def _register_production(tmp_path: Path, version: str, source: str, ap: float) -> None:
    path = tmp_path / f"old-{version}.ubj"
    _old_model(path)
    with session_scope() as session:
        register(
            session,
            domain="finance",
            name=MODEL_NAME,
            version=version,
            artifact_path=path,
            metrics={"average_precision": ap},
            card=ModelCard(name=MODEL_NAME, version=version),
            stage="production",
            extra={"source": source},
        )


def _stages() -> dict[str, str]:
    with session_scope() as session:
        return {v.version: v.stage for v in list_versions(session, "finance", MODEL_NAME)}


def test_an_older_shipped_baseline_is_replaced(db, tmp_path: Path) -> None:
    _register_production(tmp_path, "2000.01.01-000000", "shipped", 0.99)
    shipped = production.shipped_card().card.version
    assert production.ensure_production_model() == shipped
    assert _stages() == {"2000.01.01-000000": "archived", shipped: "production"}
    assert production.ensure_production_model() == shipped  # once


def test_a_better_local_model_stays_and_the_shipped_one_waits(db, tmp_path: Path) -> None:
    _register_production(tmp_path, "2000.01.01-000000", "trained", 0.99)
    shipped = production.shipped_card().card.version
    assert production.ensure_production_model() == "2000.01.01-000000"
    assert _stages() == {"2000.01.01-000000": "production", shipped: "staging"}


def test_a_worse_local_model_is_replaced(db, tmp_path: Path) -> None:
    _register_production(tmp_path, "2000.01.01-000000", "trained", 0.1)
    shipped = production.shipped_card().card.version
    assert production.ensure_production_model() == shipped


def test_no_shipped_files_keeps_production(db, tmp_path: Path, monkeypatch) -> None:
    _register_production(tmp_path, "2000.01.01-000000", "shipped", 0.5)
    monkeypatch.setattr(production, "CARD_FILE", tmp_path / "missing.json")
    assert production.ensure_production_model() == "2000.01.01-000000"


def test_a_model_on_the_previous_features_reads_its_columns_by_name(tmp_path: Path) -> None:
    model = _old_model(tmp_path / "old.ubj")
    loaded = FraudModel.load((tmp_path / "old.ubj").read_bytes())
    full = feature_names(FeatureConfig())
    X = np.random.default_rng(1).gamma(2.0, 20.0, size=(8, len(full)))  # this release's rows
    np.testing.assert_allclose(loaded.predict(X), model.predict(X))
    import xgboost

    direct = model.booster.predict(
        xgboost.DMatrix(X[:, :19]), output_margin=True, validate_features=False
    )
    np.testing.assert_allclose(loaded.margin(X), direct, rtol=1e-6)


def test_the_shipped_card_carries_the_backtest() -> None:
    doc = json.loads(production.CARD_FILE.read_text())
    metrics = doc["card"]["metrics"]
    assert "backtest_mean_average_precision" in metrics
    assert "selection_mean_average_precision" in metrics
    for month in ("2018-06", "2018-07", "2018-08"):
        assert f"backtest_{month}_average_precision" in metrics
