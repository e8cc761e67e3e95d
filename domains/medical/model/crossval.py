"""Stratified k-fold cross-validation of a task's recipe, and the final model it vouches for.

Why: one validation split of a few hundred images (82 for breast) is a noisy judge, and a
recipe tuned to it does not carry over to new patients. A recipe is judged here by k-fold
cross-validation over train + val pooled (stratified, fixed split seed ``SPLIT_SEED``): each
fold's model is trained from scratch on the other k-1 folds for the recipe's full schedule
(nothing is selected on the held-out fold; its scores per epoch are only logged), then scored
on its fold. Figures are mean ± sample sd over the k folds.

Calibration and threshold, cross-fitted: for fold i, Platt scaling and the balanced-accuracy
threshold are fitted on the out-of-fold (OOF) logits of the *other* folds and applied to fold
i, so ``cv_accuracy_*`` and ``cv_nll_*`` do not score a threshold on the data that chose it.

The final model (:func:`train_with_cv`) is trained on all of train + val with the same recipe;
its Platt map and threshold are fitted on the pooled OOF logits of the k fold models (the
final model itself has no held-out data), and the Platt map is folded into its last layer.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field
from verticals.core.errors import InvalidInput
from verticals.core.training import EpochMetrics, save_checkpoint
from verticals.domains.medical.model.artifacts import ModelExtra
from verticals.domains.medical.model.calibration import (
    Platt,
    expected_calibration_error,
    fit_platt,
    fold_into_head,
    nll,
)
from verticals.domains.medical.model.data import (
    SPLIT_SEED,
    ImageSet,
    default_data_file,
    load_npz_split,
    train_transforms,
)
from verticals.domains.medical.model.metrics import (
    accuracy,
    balanced_accuracy,
    choose_balanced_threshold,
    choose_threshold,
    roc_auc,
)
from verticals.domains.medical.model.networks import NetworkSpec
from verticals.domains.medical.model.tasks import TaskSpec, get_task
from verticals.domains.medical.model.training import (
    BUDGET_SECONDS,
    RECIPES,
    Recipe,
    TrainReport,
    _resized,
    fit_network,
    logits_of,
)

FOLD_FIGURES = ("roc_auc", "accuracy", "balanced_accuracy", "accuracy_max_threshold",
                "nll_raw", "nll_calibrated", "ece_calibrated", "flip_tta_roc_auc")


def stratified_folds(labels: np.ndarray, k: int, seed: int = SPLIT_SEED) -> list[np.ndarray]:
    """``k`` disjoint sorted index arrays covering ``range(len(labels))``, each class split as
    evenly as possible across folds; the same for the same ``labels``, ``k`` and ``seed``."""
    labels = np.asarray(labels).reshape(-1)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 2:
        raise ValueError(f"k must be an integer >= 2, got {k!r}")
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        raise ValueError("labels must contain at least two classes")
    if counts.min() < k:
        raise ValueError(f"k={k} exceeds the smallest class ({counts.min()} samples)")
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in range(k)]
    offset = 0
    for label in classes:
        index = np.flatnonzero(labels == label)
        rng.shuffle(index)
        for j, chunk in enumerate(np.array_split(index, k)):  # the first n % k are larger
            parts[(j + offset) % k].append(chunk)
        offset += len(index) % k  # the next class's larger chunks go to other folds
    return [np.sort(np.concatenate(part)) for part in parts]


def pooled_data(data_file: Path, size: int) -> ImageSet:
    """train + val of a MedMNIST-layout file (train alone when it has no val split)."""
    train = _resized(load_npz_split(data_file, "train"), size)
    try:
        val = _resized(load_npz_split(data_file, "val"), size)
    except InvalidInput:
        return train
    return ImageSet(np.concatenate([train.images, val.images]),
                    np.concatenate([train.labels, val.labels]))


class FoldScore(BaseModel):
    fold: int
    n_train: int
    n_heldout: int
    positives_heldout: int
    epochs_run: int
    seconds: float
    figures: dict[str, float] = Field(description="held-out figures, see FOLD_FIGURES")
    curve: list[float] = Field(
        default_factory=list, description="held-out ROC AUC after each epoch (logged only)"
    )


class CrossValidation(BaseModel):
    """What a k-fold run measured; ``metrics`` go into the model card."""

    task: str
    k: int
    split_seed: int
    seed: int
    recipe: dict
    folds: list[FoldScore]
    metrics: dict[str, float]
    platt: Platt = Field(description="fitted on the pooled out-of-fold logits")
    threshold: float = Field(description="balanced-accuracy cut-off on the calibrated OOF scale")
    seconds: float


@dataclass
class OutOfFold:
    logits: np.ndarray  # float64 [N], each image scored by the model that did not train on it
    targets: np.ndarray  # int64 [N], 1 = positive class
    folds: list[np.ndarray]


def _sd(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def _fold_figures(oof: OutOfFold, flipped: np.ndarray, i: int) -> dict[str, float]:
    """Held-out figures of fold ``i``; calibration and thresholds fitted on the other folds."""
    held = oof.folds[i]
    others = np.concatenate([f for j, f in enumerate(oof.folds) if j != i])
    platt = fit_platt(oof.logits[others], oof.targets[others])
    other_probs = platt.probabilities(oof.logits[others])
    balanced_cut = choose_balanced_threshold(oof.targets[others], other_probs)
    accuracy_cut = choose_threshold(oof.targets[others], other_probs)
    y, z = oof.targets[held], oof.logits[held]
    probs = platt.probabilities(z)
    return {
        "roc_auc": roc_auc(y, z),
        "accuracy": accuracy(y, probs, balanced_cut),
        "balanced_accuracy": balanced_accuracy(y, probs, balanced_cut),
        "accuracy_max_threshold": accuracy(y, probs, accuracy_cut),
        "nll_raw": nll(z, y),
        "nll_calibrated": nll(z, y, platt),
        "ece_calibrated": expected_calibration_error(probs, y),
        "flip_tta_roc_auc": roc_auc(y, (z + flipped[held]) / 2),
    }


def cross_validate(
    task: str,
    data: Path | None = None,
    k: int = 5,
    seed: int = 0,
    *,
    epochs: int | None = None,
    input_size: int | None = None,
    recipe: Recipe | None = None,
    transforms: Callable[[int], Callable] = train_transforms,
    max_seconds: float | None = BUDGET_SECONDS,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> tuple[CrossValidation, OutOfFold]:
    """k-fold cross-validation of ``recipe`` (default: the task's) over train + val."""
    spec = get_task(task)
    recipe = recipe or RECIPES[spec.name]
    started = time.perf_counter()
    data_file = Path(data) if data else default_data_file(spec)
    size = input_size or recipe.input_size or spec.input_size
    pooled = pooled_data(data_file, size)
    targets = (pooled.labels == spec.positive_index).astype(np.int64)
    try:
        folds = stratified_folds(targets, k)
    except ValueError as exc:
        raise InvalidInput(f"cannot split {data_file.name} into {k} folds: {exc}") from None
    network = NetworkSpec(input_size=size)
    logits = np.zeros(len(targets))
    flipped = np.zeros(len(targets))
    runs = []
    for i, held in enumerate(folds):
        t0 = time.perf_counter()
        train_index = np.setdiff1d(np.arange(len(targets)), held)
        fit = fit_network(
            spec, recipe, pooled.subset(train_index), pooled.subset(held), seed=seed,
            network=network, epochs=epochs, select="last", max_seconds=max_seconds,
            progress=progress, transforms=transforms,
        )
        logits[held] = logits_of(fit.model, pooled.images[held])
        flipped[held] = logits_of(fit.model, pooled.images[held][..., ::-1].copy())
        curve = [h.metrics.get("val_roc_auc", float("nan")) for h in fit.result.history]
        runs.append((len(train_index), len(held), int(targets[held].sum()),
                     fit.result.epochs_run, time.perf_counter() - t0, curve))
        if log:
            log(f"fold {i + 1}/{k}: held-out ROC AUC {roc_auc(targets[held], logits[held]):.4f}"
                f" ({runs[-1][4]:.0f}s)")
    oof = OutOfFold(logits, targets, folds)
    scores = []
    for i, (n_train, n_held, positives, epochs_run, seconds, curve) in enumerate(runs):
        scores.append(FoldScore(
            fold=i, n_train=n_train, n_heldout=n_held, positives_heldout=positives,
            epochs_run=epochs_run, seconds=round(seconds, 1),
            figures=_fold_figures(oof, flipped, i), curve=curve,
        ))
    platt = fit_platt(logits, targets)
    threshold = choose_balanced_threshold(targets, platt.probabilities(logits))
    metrics: dict[str, float] = {"cv_folds": float(k)}
    for name in FOLD_FIGURES:
        values = [s.figures[name] for s in scores]
        metrics[f"cv_{name}_mean"] = statistics.fmean(values)
        metrics[f"cv_{name}_sd"] = _sd(values)
    metrics["cv_pooled_roc_auc"] = roc_auc(targets, logits)
    metrics["cv_positive_share"] = float(targets.mean())
    metrics["calibration_scale"] = platt.scale
    metrics["calibration_bias"] = platt.bias
    metrics["decision_threshold"] = threshold
    result = CrossValidation(
        task=spec.name, k=k, split_seed=SPLIT_SEED, seed=seed,
        recipe=recipe.model_dump(mode="json") | ({"epochs": epochs} if epochs else {}),
        folds=scores, metrics=metrics, platt=platt, threshold=threshold,
        seconds=time.perf_counter() - started,
    )
    return result, oof


def card_texts(spec: TaskSpec, metrics: dict[str, float]) -> dict[str, str]:
    """``build_card`` keyword arguments describing a cross-validated, calibrated model."""
    from verticals.domains.medical.model.cards import CV_CALIBRATION, CV_EVALUATION

    return {
        "calibration": CV_CALIBRATION.format(
            scale=metrics["calibration_scale"], bias=metrics["calibration_bias"],
            prevalence=metrics["cv_positive_share"], positive=spec.positive_label,
            threshold=metrics["decision_threshold"],
        ),
        "evaluation_data": CV_EVALUATION.format(k=int(metrics["cv_folds"])),
    }


def train_with_cv(
    task: str,
    data: Path | None,
    seed: int,
    k: int,
    *,
    epochs: int | None = None,
    input_size: int | None = None,
    recipe: Recipe | None = None,
    max_seconds: float | None = BUDGET_SECONDS,
    register: bool = True,
    progress: bool = True,
    output_dir: Path | None = None,
    callbacks: Sequence[Callable[[EpochMetrics], None]] = (),
    log: Callable[[str], None] | None = None,
    cross_validation: CrossValidation | None = None,
) -> TrainReport:
    """Cross-validate the recipe, then train the served model on all of train + val.

    ``cross_validation``: a finished k-fold run of this very recipe, k and seed (e.g. saved by
    an earlier run) to reuse instead of running it again; refused when they differ.

    The report's metrics are the k-fold figures (``cv_*_mean`` / ``cv_*_sd``), the
    calibration and ``decision_threshold`` (from the OOF logits), and ``train_seconds`` of
    the final model alone (wall clock; ``train_cpu_seconds``: CPU time of this process, the
    figure that does not depend on other load). ``output_dir/best.safetensors`` receives the calibrated network.
    """
    spec: TaskSpec = get_task(task)
    recipe = recipe or RECIPES[spec.name]
    started = time.perf_counter()
    data_file = Path(data) if data else default_data_file(spec)
    size = input_size or recipe.input_size or spec.input_size
    if cross_validation is not None:
        expected = recipe.model_dump(mode="json") | ({"epochs": epochs} if epochs else {})
        if (cross_validation.task, cross_validation.k, cross_validation.seed,
                cross_validation.recipe) != (spec.name, k, seed, expected):
            raise InvalidInput("the saved cross-validation is of another task, k, seed or recipe")
        cv = cross_validation
    else:
        cv, _ = cross_validate(spec.name, data_file, k, seed, epochs=epochs, input_size=size,
                               recipe=recipe, max_seconds=max_seconds, progress=False, log=log)
    network = NetworkSpec(input_size=size)
    version = datetime.now(UTC).strftime("%Y%m%d-%H%M%S") + f"-s{seed}"
    final_started, final_cpu = time.perf_counter(), time.process_time()
    fit = fit_network(
        spec, recipe, pooled_data(data_file, size), None, seed=seed, network=network,
        epochs=epochs, select="last", max_seconds=max_seconds, progress=progress,
        callbacks=callbacks,
    )
    train_seconds = time.perf_counter() - final_started
    train_cpu_seconds = time.process_time() - final_cpu  # the CPU budget, whatever the load
    fold_into_head(fit.model, cv.platt)
    metrics = {**cv.metrics, "train_seconds": round(train_seconds, 1),
               "train_cpu_seconds": round(train_cpu_seconds, 1),
               "cv_seconds": round(cv.seconds, 1)}
    with tempfile.TemporaryDirectory(prefix="verticals-medical-") as scratch:
        run_dir = Path(output_dir) if output_dir else Path(scratch)
        checkpoint = save_checkpoint(
            fit.model, run_dir / "best.safetensors",
            state={"cross_validation": cv.model_dump(mode="json"),
                   "history": [h.model_dump(mode="json") for h in fit.result.history]},
            metadata={"task": spec.name, "version": version, "cv_folds": str(k),
                      "averaged_epochs": str(fit.averaged_epochs)},
        )
        report = TrainReport(
            task=spec.name, version=version, registered=False, promoted=False,
            metrics=metrics, threshold=cv.threshold, seconds=time.perf_counter() - started,
            epochs_run=fit.result.epochs_run, best_epoch=fit.result.epochs_run,
            world_size=1, init_from=None, seed=seed, input_size=size,
            averaged_epochs=fit.averaged_epochs, epochs_override=epochs, cv=k,
            cv_folds=[{"fold": s.fold, "n_heldout": s.n_heldout, **s.figures}
                      for s in cv.folds],
        )
        if register:
            from verticals.domains.medical.model.registration import register_cv_run

            extra = ModelExtra(task=spec.name, network=network, threshold=cv.threshold,
                               init_from=None, seed=seed)
            report = register_cv_run(report, checkpoint, extra, data_file)
    return report
