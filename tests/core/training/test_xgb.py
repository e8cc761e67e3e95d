from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from verticals.core.training.xgb import (
    XGBParams,
    booster_json_attribute,
    load_booster,
    pick_device,
    save_booster,
    train_booster,
)


def _data(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.5, size=n) > 1.0).astype(int)
    return X, y


def test_pick_device_cpu_without_gpu() -> None:
    assert pick_device("cpu") == "cpu"
    assert pick_device("auto") in ("cpu", "cuda")
    with pytest.raises(ValueError, match="device"):
        pick_device("tpu")  # type: ignore[arg-type]


def test_train_with_early_stopping_learns_and_stops() -> None:
    X, y = _data()
    Xv, yv = _data(seed=1)
    params = XGBParams(max_depth=3, n_rounds=500, early_stopping_rounds=5, learning_rate=0.3)
    seen: list[int] = []
    result = train_booster(
        X,
        y,
        params,
        eval_set=(Xv, yv),
        feature_names=list("abcd"),
        on_round=lambda i, m: seen.append(i),
    )
    assert result.best_iteration < 499  # stopped early
    assert result.best_score is not None and result.best_score > 0.8  # aucpr on a learnable task
    assert result.device == "cpu" or result.device == "cuda"
    assert seen and seen[0] == 0
    assert "eval-aucpr" in result.history


@pytest.mark.parametrize("suffix", [".json", ".ubj"])
def test_save_load_roundtrip_keeps_predictions_and_attributes(tmp_path: Path, suffix: str) -> None:
    import xgboost

    X, y = _data()
    result = train_booster(X, y, XGBParams(n_rounds=20, early_stopping_rounds=None))
    path = save_booster(result.booster, tmp_path / f"m{suffix}", attributes={"meta": '{"a": 1}'})
    loaded = load_booster(path)
    before = result.booster.predict(xgboost.DMatrix(X))
    after = loaded.predict(xgboost.DMatrix(X))
    np.testing.assert_allclose(before, after, rtol=1e-6)
    assert booster_json_attribute(loaded, "meta") == {"a": 1}


def test_refuses_pickle_and_inf(tmp_path: Path) -> None:
    X, y = _data(200)
    result = train_booster(X, y, XGBParams(n_rounds=2, early_stopping_rounds=None))
    with pytest.raises(ValueError, match="no pickle"):
        save_booster(result.booster, tmp_path / "m.pkl")
    with pytest.raises(ValueError, match="no pickle"):
        load_booster(tmp_path / "m.pickle")
    X[0, 0] = np.inf
    with pytest.raises(ValueError, match="inf"):
        train_booster(X, y, XGBParams(n_rounds=2))
