"""Cross-validate a task's recipe, train it on all the shared data, write it into
``shared_models/medical/`` (card JSON + safetensors with its sha256).

``verticals train medical --task pneumonia --cv 5 --seed 0 --ship 0.3.0`` (the exact command is
stored in the shipped model card).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from verticals.core.registry.bundle import ShippedBundle, read_bundle, write_bundle
from verticals.domains.medical.model.artifacts import (
    OOD_KIND,
    WEIGHTS,
    ModelExtra,
    card_file,
    model_extra,
    shipped_dir,
    shipped_model,
)
from verticals.domains.medical.model.cards import build_card
from verticals.domains.medical.model.crossval import card_texts

if TYPE_CHECKING:
    from verticals.domains.medical.model.training import TrainReport
from verticals.domains.medical.model.networks import NetworkSpec
from verticals.domains.medical.model.tasks import TaskSpec, get_task
from verticals.domains.medical.model.training import RECIPES, train_task

DATA_NOTE = ("--data: {file} of MedMNIST v2 (28x28, train and val splits; origin, licence and "
             "checksums in the data folder's SOURCE.md)")


def _current_gradcam_layer(task: str, target_dir: Path) -> str:
    """The Grad-CAM layer of the card being replaced (else the NetworkSpec default)."""
    card = target_dir / f"{task}.card.json"
    if card.is_file():
        try:
            return model_extra(read_bundle(card)).network.gradcam_layer
        except ValueError:
            pass
    return NetworkSpec().gradcam_layer


def _previous_changelog(task: str, target_dir: Path) -> dict[str, str]:
    card = target_dir / f"{task}.card.json"
    try:
        return dict(read_bundle(card).card.changelog)
    except (OSError, ValueError):
        return {}


def _recipe_note(spec: TaskSpec, report: TrainReport) -> str:
    recipe = RECIPES[spec.name]
    parts = [
        "augmentation: random resized crop, rotation ±15°, shear, flip, contrast/brightness "
        "jitter, blur/noise",
        f"{report.epochs_run} epochs, AdamW lr {recipe.lr:g}, cosine schedule",
    ]
    if recipe.label_smoothing:
        parts.append(f"label smoothing {recipe.label_smoothing:g}")
    if recipe.balance_classes:
        parts.append("class-balanced loss")
    if report.averaged_epochs:
        parts.append(f"mean weights of the last {report.averaged_epochs} epochs")
    return "; ".join(parts)


def ship(
    task: str, seed: int, version: str, *, cv: int = 5, epochs: int | None = None,
    data: Path | None = None, target_dir: Path | None = None, note: str | None = None,
    cv_result: Path | None = None,
) -> ShippedBundle:
    """Cross-validate, train on train + val, calibrate, and write ``<task>.card.json`` and
    ``<task>.safetensors`` into ``target_dir`` (default: the package's shipped folder).

    ``cv_result``: a saved :class:`~.crossval.CrossValidation` JSON of this recipe, k and seed,
    reused instead of running the k folds again (the same seeded computation)."""
    spec = get_task(task)
    target_dir = target_dir or shipped_dir()
    gradcam_layer = _current_gradcam_layer(task, target_dir)
    changelog = _previous_changelog(task, target_dir)
    with tempfile.TemporaryDirectory(prefix=f"verticals-ship-{task}-") as run_dir:
        if cv_result is None:
            report = train_task(task, data, 1, seed, epochs=epochs, register=False,
                                output_dir=Path(run_dir), cv=cv)
        else:
            from verticals.domains.medical.model.crossval import CrossValidation, train_with_cv

            saved = CrossValidation.model_validate_json(Path(cv_result).read_text())
            report = train_with_cv(task, data, seed, cv, epochs=epochs, register=False,
                                   output_dir=Path(run_dir), cross_validation=saved)
        weights = target_dir / f"{task}.safetensors"
        shutil.copyfile(Path(run_dir) / "best.safetensors", weights)
    command = f"verticals train medical --task {task} --cv {cv} --seed {seed} --ship {version}"
    if epochs:
        command += f" --epochs {epochs}"
    command += f" --data {spec.dataset_file}  # " + DATA_NOTE.format(file=spec.dataset_file)
    metrics = {**report.metrics, "epochs_run": report.epochs_run}
    if report.averaged_epochs:
        metrics["averaged_epochs"] = report.averaged_epochs
    network = NetworkSpec(input_size=report.input_size, gradcam_layer=gradcam_layer)
    recipe_note = _recipe_note(spec, report)
    card = build_card(
        spec,
        metrics=metrics,
        reproduce_command=command,
        training_data=f"MedMNIST v2 {spec.dataset_file} (28x28): the train and val splits "
        "pooled; the test split is withheld and was never used for any choice",
        description=f"MONAI ResNet (basic blocks 1-1-1-1, widths 24-48-96-192) at "
        f"{report.input_size}x{report.input_size}, from scratch, seed={seed}; recipe chosen by "
        f"{cv}-fold cross-validation ({recipe_note}); final model trained on all of train and "
        f"val in {metrics['train_cpu_seconds']:.0f}s of CPU (1 thread); Platt calibration folded "
        "into the last layer; balanced-accuracy decision threshold",
        input_size=report.input_size,
        **card_texts(spec, report.metrics),
    )
    changelog[version] = note or (
        f"{cv}-fold cross-validated robust recipe ({recipe_note}); trained on train+val; "
        "calibrated probabilities; balanced-accuracy threshold"
    )
    card = card.model_copy(update={"version": version, "changelog": changelog})
    extra = ModelExtra(task=task, network=network, threshold=report.threshold,
                       source="shipped", init_from=None, seed=seed)
    write_bundle(card_file(task, target_dir), card, {WEIGHTS: weights.read_bytes()},
                 primary=WEIGHTS, filenames={WEIGHTS: weights.name}, extra=extra.to_json())
    return ship_ood_profile(task, data, target_dir)


def ship_ood_profile(
    task: str, data: Path | None = None, target_dir: Path | None = None
) -> ShippedBundle:
    """Fit the shipped model's out-of-distribution profile (``model.ood``: class statistics from
    the train split, the cut from the official val split) and record it in the shipped card."""
    from verticals.domains.medical.model.data import default_data_file
    from verticals.domains.medical.model.ood import fit_profile_on_file, save_profile
    from verticals.domains.medical.model.production import shipped_classifier

    spec = get_task(task)
    target_dir = target_dir or shipped_dir()
    shipped, weights = shipped_model(task)
    classifier = shipped_classifier(task)
    data_file = Path(data) if data else default_data_file(spec)
    profile = fit_profile_on_file(
        classifier.torch_module().logits, classifier.input_size, data_file
    )
    path = save_profile(profile, target_dir / f"{task}.ood.safetensors")
    return write_bundle(
        card_file(task, target_dir),
        shipped.card,
        {WEIGHTS: weights.read_bytes(), OOD_KIND: path.read_bytes()},
        primary=WEIGHTS,
        filenames={WEIGHTS: weights.name, OOD_KIND: path.name},
        extra=shipped.extra,
    )
