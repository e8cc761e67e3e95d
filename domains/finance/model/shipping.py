"""Turn a training run into a registered version (and, optionally, the shipped artifacts)."""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from verticals.core.config import get_settings
from verticals.core.db import session_scope
from verticals.core.registry import ModelCard, TensorSpec, file_sha256
from verticals.core.registry.bundle import write_bundle
from verticals.core.registry.gate import PromotionGate
from verticals.core.registry.shipping import register_and_promote
from verticals.domains.finance.model.production import DOMAIN, PROMOTION_METRIC
from verticals.domains.finance.model.training import TrainingReport
from verticals.domains.finance.settings import MODEL_NAME


def new_version() -> str:
    return datetime.now(UTC).strftime("%Y.%m.%d-%H%M%S")


def model_card(
    report: TrainingReport, version: str, data_file: Path, n_rows: int, command: str
) -> ModelCard:
    import sklearn
    import xgboost

    metrics: dict[str, float] = {}
    if report.report:
        metrics.update({k: round(v, 6) for k, v in report.report.items()})
    metrics.update({f"validation_{k}": round(v, 6) for k, v in report.validation.items()})
    for prefix, result in (("selection", report.selection), ("backtest", report.backtest)):
        if not result:
            continue
        for key in ("mean", "std"):
            metrics.update({f"{prefix}_{key}_{k}": round(v, 6) for k, v in result[key].items()})
        for fold, values in result["folds"].items():
            metrics.update({f"{prefix}_{fold}_{k}": round(v, 6) for k, v in values.items()})
    metrics.update({f"seconds_{k}": round(v, 1) for k, v in report.seconds.items()})
    names = report.model.meta.feature_names
    return ModelCard(
        name=MODEL_NAME,
        version=version,
        task="binary classification: card transaction is fraudulent",
        description=(
            f"XGBoost ({report.selected}) on {len(report.model.meta.used_features)} behavioural "
            "features computed online from per-customer and per-terminal day buckets; Platt-"
            "calibrated probabilities; reasons from XGBoost pred_contribs."
        ),
        intended_use=(
            "Real-time scoring of card authorisations and prioritising an analyst review queue. "
            "Decisions come from expected cost (see DecisionConfig), not a fixed threshold."
        ),
        limitations=(
            "Trained on simulated data (Fraud Detection Handbook simulator): real traffic differs. "
            "Terminal and card fraud-rate features need labels posted through the label endpoint "
            "(counted only after the label delay). Calibration was fitted on the validation month "
            "of the selection run and reused for the shipped fit."
        ),
        training_data=(
            f"{data_file.name} (sha256 {file_sha256(data_file)[:16]}..., {n_rows} rows); "
            f"shipped fit on {report.windows['shipped_train']}"
        ),
        evaluation_data=(
            f"selection by the mean average precision over the folds "
            f"{report.windows['selection_folds']} (metrics selection_*; calibration on "
            f"{report.windows['validation']}: validation_*); metrics without prefix on the unseen "
            f"{report.windows['report']} (trained {report.windows['report_train']}, label-delay "
            "gap), never used for selection; backtest_* (if present): the selected recipe "
            "re-fitted per calendar-month fold, reported only"
        ),
        metrics=metrics,
        reproduce_command=command,
        framework_versions={
            "python": platform.python_version(),
            "xgboost": xgboost.__version__,
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
        },
        inputs=[
            TensorSpec(
                name="features",
                dtype="float64",
                shape=["batch", len(names)],
                description="columns: " + ", ".join(names) + " (NaN = unknown)",
            )
        ],
        outputs=[
            TensorSpec(
                name="fraud_probability",
                dtype="float64",
                shape=["batch"],
                value_range=(0.0, 1.0),
                description="calibrated probability that the transaction is fraudulent",
            )
        ],
        changelog={version: f"trained with `{command}`"},
        license="model: same terms as the project; data: see the fraud-handbook SOURCE.md",
    )


def register_run(
    report: TrainingReport, card: ModelCard, *, promote_if_better: bool = True
) -> dict[str, Any]:
    """Save the model under the artifacts folder, register it (staging), promote it when its
    unseen-month average precision is at least production's."""
    settings = get_settings()
    settings.ensure_home()
    path = settings.artifacts_dir / DOMAIN / f"{MODEL_NAME}-{card.version}.ubj"
    report.model.save(path)
    with session_scope() as session:
        outcome = register_and_promote(
            session,
            domain=DOMAIN,
            name=MODEL_NAME,
            artifact_path=path,
            card=card,
            metric=PROMOTION_METRIC,
            gate=PromotionGate(f"{DOMAIN}/{MODEL_NAME}"),
            extra={"summary": report.summary()},
            promote_if_better=promote_if_better,
        )
    return {
        "version": card.version,
        "artifact": str(path),
        "promoted": outcome.promoted,
        "production_before": outcome.production_before,
        "production_metric_before": outcome.baseline,
    }


def ship(
    report: TrainingReport,
    card: ModelCard,
    target: Path,
    frame: pd.DataFrame,
) -> dict[str, str]:
    """Write the shipped artifacts: model (UBJ), card JSON, what-if scores, demo sample."""
    from verticals.shared_models.finance import CARD_FILE, DEMO_FILE, MODEL_FILE, WHATIF_FILE

    target.mkdir(parents=True, exist_ok=True)
    model_path = report.model.save(target / MODEL_FILE.name)
    bundle = write_bundle(
        target / CARD_FILE.name,
        card,
        {"model": model_path.read_bytes()},
        primary="model",
        filenames={"model": MODEL_FILE.name},
        extra={"training": report.summary()},
    )
    sha = bundle.files["model"].sha256
    whatif_sample(report.validation_scores).to_parquet(target / WHATIF_FILE.name, index=False)
    demo_sample(frame).to_csv(target / DEMO_FILE.name, index=False)
    return {"model": str(model_path), "sha256": sha}


def whatif_sample(scores: pd.DataFrame, keep: float = 0.1, seed: int = 0) -> pd.DataFrame:
    """Validation-window scores for the dashboard's what-if: every fraud and a ``keep`` share of
    genuine rows, each with the ``weight`` that restores the full window's counts."""
    rng = np.random.default_rng(seed)
    genuine = scores["label"] == 0
    kept = ~genuine | (rng.random(len(scores)) < keep)
    out = scores[kept].copy()
    out["weight"] = np.where(out["label"] == 0, 1.0 / keep, 1.0)
    out["probability"] = out["probability"].astype(np.float32)
    out["amount"] = out["amount"].astype(np.float32)
    return out.reset_index(drop=True)


def demo_sample(frame: pd.DataFrame, n_customers: int = 60, seed: int = 0) -> pd.DataFrame:
    """All last-month transactions of a few customers (half of them with a fraud), raw format."""
    last = frame["TX_DATETIME"].max() - pd.Timedelta(days=30)
    month = frame[frame["TX_DATETIME"] >= last]
    rng = np.random.default_rng(seed)
    fraud_cards = month.loc[month["TX_FRAUD"] == 1, "CUSTOMER_ID"].unique()
    other = np.setdiff1d(month["CUSTOMER_ID"].unique(), fraud_cards)
    chosen = np.concatenate(
        [
            rng.choice(fraud_cards, size=min(n_customers // 2, len(fraud_cards)), replace=False),
            rng.choice(other, size=min(n_customers // 2, len(other)), replace=False),
        ]
    )
    sample = month[month["CUSTOMER_ID"].isin(chosen)]
    columns = [
        "TRANSACTION_ID",
        "TX_DATETIME",
        "CUSTOMER_ID",
        "TERMINAL_ID",
        "TX_AMOUNT",
        "TX_FRAUD",
    ]
    return sample[columns].reset_index(drop=True)
