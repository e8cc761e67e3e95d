"""The model cards of the two manufacturing models, from their training reports."""

from __future__ import annotations

import platform
from collections.abc import Mapping

import sklearn
import torch
import xgboost
from verticals.core.registry import ModelCard, TensorSpec
from verticals.domains.manufacturing import NAME
from verticals.domains.manufacturing.model.cmapss import READING_COLUMNS
from verticals.domains.manufacturing.model.failure_training import FailureTrainReport
from verticals.domains.manufacturing.model.rul_training import RulTrainReport


def _versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "xgboost": xgboost.__version__,
        "scikit-learn": sklearn.__version__,
    }


def _numbers(prefix: str, values: Mapping[str, float]) -> dict[str, float]:
    return {f"{prefix}{k}": float(v) for k, v in values.items() if isinstance(v, int | float)}


def rul_card(version: str, report: RulTrainReport, data_name: str) -> ModelCard:
    return ModelCard(
        name="rul",
        version=version,
        task="regression: remaining useful life (cycles) of a turbofan, with a 90% interval",
        description=(
            f"{report.recipe}: window of {report.window} cycles over {len(report.used_sensors)} "
            f"sensors normalised per operating regime ({report.n_regimes} found); target capped "
            f"at {report.cap:g}; split-conformal interval on calibration engines; an "
            "out-of-distribution check on operating settings and sensor trends."
        ),
        intended_use=(
            "Ranking turbofans for maintenance planning; the decision (run / inspect / replace) "
            "weighs the interval against the planned and unplanned costs the plant configures."
        ),
        limitations=(
            "Trained on simulated engines (C-MAPSS) of one fault mode and the operating regimes "
            "of its training file: other fault modes and regimes get a warning, not a confident "
            "RUL. Estimates above the cap mean 'healthy, no degradation seen yet'."
        ),
        training_data=(
            f"{data_name}: {report.engines.model_dump()} engines (training, validation, "
            "calibration split by engine)"
        ),
        evaluation_data=(
            f"validation engines of {data_name} cut at random points "
            f"({report.n_validation_cuts} cuts): metrics val_*; calibration_*: the conformal "
            "calibration engines. Test-file figures are reported in docs, never used to choose."
        ),
        metrics={
            **_numbers("val_", report.validation),
            **_numbers("calibration_", report.calibration),
        },
        reproduce_command=(
            f"verticals train {NAME} --task rul --data {data_name} --ship shared_models/{NAME}"
        ),
        framework_versions=_versions(),
        inputs=[TensorSpec(name="history", dtype="float64", shape=[-1, len(READING_COLUMNS)])],
        outputs=[TensorSpec(name="rul_low_rul_high", dtype="float64", shape=[3])],
        license="model: Apache-2.0; data: NASA C-MAPSS (public domain)",
    )


def failure_card(
    version: str, report: FailureTrainReport, data_name: str, cv: Mapping[str, float] | None
) -> ModelCard:
    return ModelCard(
        name="failure",
        version=version,
        task="binary classification: a machine-tool run ends in failure; likely failure modes",
        description=(
            f"XGBoost on {len(report.features)} features (the six readings and physical ones: "
            "power, temperature difference, strain, margins to the documented thresholds); "
            "per-mode models for the likely failure modes; reasons from tree contributions. "
            f"Decision threshold {report.threshold:.3g}, chosen on out-of-fold predictions."
        ),
        intended_use="Stopping or inspecting a machine tool before a failure; a what-if tool.",
        limitations=(
            "AI4I 2020 is synthetic and reflects one plant's machines; random failures (RNF) "
            "are not predictable. Thresholds reflect its cost-free F1 optimum."
        ),
        training_data=f"{data_name}: {report.rows} rows, {report.failures} failures",
        evaluation_data=(
            "cv_*: stratified k-fold out-of-fold figures of the whole recipe (threshold chosen "
            "inside each training fold); inner_*: the shipped fit's own out-of-fold predictions"
        ),
        metrics={
            **_numbers("inner_", report.inner_oof),
            **_numbers("cv_", cv or {}),
            "threshold": report.threshold,
        },
        reproduce_command=(
            f"verticals train {NAME} --task failure --data {data_name} --ship shared_models/{NAME}"
        ),
        framework_versions=_versions(),
        inputs=[TensorSpec(name="reading", dtype="float64", shape=[6])],
        outputs=[TensorSpec(name="failure_probability", dtype="float64", shape=[1])],
        license="model: Apache-2.0; data: AI4I 2020 (CC BY 4.0)",
    )
