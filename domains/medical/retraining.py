"""Retraining a medical task's classifier from MedMNIST plus clinicians' reviews.

- original data: the MedMNIST file ``verticals train medical`` reads (setting
  ``VERTICALS_MEDICAL_RETRAIN_DATA``, else ``VERTICALS_MEDMNIST_DIR`` / ``../shared``), its
  ``train`` split;
- labels: core's accepted labels of ``medical``/``<task>`` (subject = study id, label = one of
  the task's labels); each study's stored de-identified image is read and preprocessed as an
  upload is. A newer label of the same study wins; a study whose image is gone is counted only;
- held-back slice: the file's ``val`` split (never ``test``) plus the newest
  ``holdout_fraction`` of the reviewed studies, which are judged on before they are trained on;
- ``--data FILE``: a ``.npz`` of UNLABELLED images (an ``images`` array, else every
  ``*_images`` array; labels are ignored) → FixMatch-style semi-supervised training
  (:mod:`.model.semisupervised`); the pseudo-labels used per class go on the card.

The challenger follows the task's recipe (``training.RECIPES``) from scratch: a validation split
carved from its training part picks nothing but calibration and the threshold. The metric is
ROC AUC; the challenger's ONNX int8 variant must stay within 0.01 of it. Quick mode for tests
and smoke runs: ``VERTICALS_MEDICAL_RETRAIN_EPOCHS`` and ``..._SUBSET`` (at most that many
MedMNIST images per split, stratified).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from verticals.core.errors import InvalidInput
from verticals.core.labeling.retrain import Challenger, RetrainRecipe, TrainingSet
from verticals.domains.medical.model.data import ImageSet
from verticals.domains.medical.model.tasks import TASKS, TaskSpec, get_task

if TYPE_CHECKING:
    from sqlalchemy.orm import Session
    from verticals.core.compression.target import CompressionTarget
    from verticals.core.labeling.store import AcceptedLabel
    from verticals.core.registry.store import ModelVersion
    from verticals.domains.medical.model.inference import Classifier

DOMAIN = "medical"
SPLIT_SEED = 15  # the quick-mode subset and nothing else


class MedicalRetrainSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VERTICALS_MEDICAL_RETRAIN_", extra="ignore")

    data: Path | None = None
    holdout_fraction: float = Field(0.2, ge=0, lt=1, description="newest reviews held back")
    epochs: int | None = Field(None, ge=1, description="quick mode: fewer than the recipe's")
    subset: int | None = Field(None, ge=8, description="quick mode: MedMNIST images per split")
    max_metric_drop: float = Field(0.0, ge=0)
    seed: int = 0
    threshold: float = Field(0.95, gt=0.5, le=1)
    unlabelled_weight: float = Field(1.0, ge=0)
    unlabelled_ratio: int = Field(2, ge=1)
    compress: bool = True


@dataclass
class _Data:
    spec: TaskSpec
    size: int
    source: Path
    train: ImageSet  # MedMNIST train (+ older reviews)
    holdout: ImageSet  # MedMNIST val (+ newest reviews)
    unlabelled: np.ndarray | None
    curated: int = 0  # the first ``curated`` holdout images: the val split, the gate's judge


def _stratified(data: ImageSet, limit: int | None) -> ImageSet:
    if limit is None or len(data) <= limit:
        return data
    rng = np.random.default_rng(SPLIT_SEED)
    keep = []
    for label in np.unique(data.labels):
        idx = np.flatnonzero(data.labels == label)
        keep.append(rng.permutation(idx)[: max(1, round(limit * len(idx) / len(data)))])
    return data.subset(np.sort(np.concatenate(keep)))


def load_unlabelled(path: Path, size: int) -> np.ndarray:
    """``[N, 1, size, size]`` float32 from a ``.npz``: ``images``, else every ``*_images``."""
    from verticals.domains.medical.model.data import as_unit_float
    from verticals.domains.medical.model.preprocess import preprocess_batch

    if path.suffix != ".npz":
        raise InvalidInput(f"{path.name}: unlabelled images come as a .npz", {"field": "data"})
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = (
                ["images"]
                if "images" in npz.files
                else sorted(k for k in npz.files if k.endswith("_images"))
            )
            if not keys:
                raise InvalidInput(f"{path.name} holds no images array", {"field": "data"})
            arrays = [as_unit_float(npz[k]) for k in keys]
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read {path.name}: {exc}", {"field": "data"}) from None
    return preprocess_batch(np.concatenate(arrays), size)


def _reviewed(
    session: Session, spec: TaskSpec, labels: list[AcceptedLabel], size: int
) -> tuple[list[tuple[np.ndarray, int]], dict[str, int]]:
    """(image, label index) per reviewed study, oldest label first; counts of what was not."""
    from verticals.domains.medical.model.evaluation import _load_image
    from verticals.domains.medical.model.preprocess import preprocess
    from verticals.domains.medical.storage import files_from_row
    from verticals.domains.medical.tables import StudyRow

    latest: dict[str, int] = {}
    unreadable = 0
    for item in labels:  # oldest first: a newer label of the same study replaces it
        name = item.label.strip()
        if name not in spec.labels:
            unreadable += 1
            continue
        latest.pop(item.subject, None)
        latest[item.subject] = spec.labels.index(name)
    found: list[tuple[np.ndarray, int]] = []
    missing = 0
    for study_id, label in latest.items():
        row = session.get(StudyRow, study_id)
        image = files_from_row(row.storage_dir).image if row is not None else None
        if image is None or not image.is_file():
            missing += 1
            continue
        found.append((preprocess(_load_image(image), size), label))
    return found, {"labels_unreadable": unreadable, "studies_missing": missing}


def _stack(base: ImageSet, extra: list[tuple[np.ndarray, int]]) -> ImageSet:
    if not extra:
        return base
    images = np.stack([image for image, _ in extra]).astype(np.float32)
    labels = np.asarray([label for _, label in extra], dtype=np.int64)
    return ImageSet(np.concatenate([base.images, images]), np.concatenate([base.labels, labels]))


def _counts(spec: TaskSpec, labels: np.ndarray) -> str:
    return ", ".join(f"{int((labels == i).sum())} {name}" for i, name in enumerate(spec.labels))


@dataclass
class MedicalRetrainRecipe(RetrainRecipe):
    settings: MedicalRetrainSettings

    domain = DOMAIN
    models = tuple(TASKS)
    metric = "roc_auc"
    higher_is_better = True
    compressed_variant = "onnx-int8"

    def __post_init__(self) -> None:
        self.max_metric_drop = self.settings.max_metric_drop

    @classmethod
    def from_settings(cls) -> MedicalRetrainRecipe:
        return cls(MedicalRetrainSettings())

    def build(
        self, session: Session, model: str, since: datetime | None, extra_data: Path | None
    ) -> TrainingSet:
        from verticals.core.labeling.store import accepted_labels
        from verticals.domains.medical.model.data import default_data_file, load_npz_split
        from verticals.domains.medical.model.training import RECIPES, _resized

        s, spec = self.settings, get_task(model)
        size = RECIPES[spec.name].input_size or spec.input_size
        source = Path(s.data) if s.data else default_data_file(spec)
        train = _stratified(_resized(load_npz_split(source, "train"), size), s.subset)
        val = _stratified(_resized(load_npz_split(source, "val"), size), s.subset)
        labels = accepted_labels(session, domain=DOMAIN, model=spec.name, since=since)
        reviewed, skipped = _reviewed(session, spec, labels, size)
        n_held = round(len(reviewed) * s.holdout_fraction) if len(reviewed) > 1 else 0
        older, newest = reviewed[: len(reviewed) - n_held], reviewed[len(reviewed) - n_held :]
        training, holdout = _stack(train, older), _stack(val, newest)
        unlabelled = load_unlabelled(Path(extra_data), size) if extra_data else None
        detail: dict[str, Any] = {
            "source": source.name,
            "accepted_labels": len(labels),
            "reviewed_studies": len(reviewed),
            "reviews_in_holdout": len(newest),
            **skipped,
            "train_classes": _counts(spec, training.labels),
            "holdout_classes": _counts(spec, holdout.labels),
            "unlabelled_images": 0 if unlabelled is None else len(unlabelled),
        }
        if s.subset or s.epochs:
            detail["quick_mode"] = {"subset": s.subset, "epochs": s.epochs}
        reviews = f" + {len(older)} reviewed studies" if older else ""
        held = f" + the newest {len(newest)} reviewed studies" if newest else ""
        return TrainingSet(
            data=_Data(spec, size, source, training, holdout, unlabelled, curated=len(val)),
            data_window=f"{source.name} train ({len(train)}){reviews}",
            holdout_window=f"{source.name} val ({len(val)}){held}",
            n_train=len(training),
            n_holdout=len(holdout),
            labels_used=len(older),
            detail=detail,
        )

    def train_challenger(self, training: TrainingSet, model: str, version: str) -> Challenger:
        from verticals.core.config import get_settings
        from verticals.core.training import save_checkpoint
        from verticals.domains.medical.model.artifacts import OOD_KIND, ModelExtra
        from verticals.domains.medical.model.cards import build_card
        from verticals.domains.medical.model.data import carve_validation
        from verticals.domains.medical.model.inference import Classifier
        from verticals.domains.medical.model.metrics import roc_auc
        from verticals.domains.medical.model.networks import NetworkSpec
        from verticals.domains.medical.model.ood import fit_profile, save_profile
        from verticals.domains.medical.model.semisupervised import SemiSupervised
        from verticals.domains.medical.model.training import (
            RECIPES,
            _probabilities,
            calibrate,
            fit_network,
            logits_of,
        )

        data: _Data = training.data
        s, spec = self.settings, data.spec
        recipe = RECIPES[spec.name]
        train, val = carve_validation(data.train, recipe.val_fraction)
        network = NetworkSpec(input_size=data.size)
        semi = SemiSupervised(
            threshold=s.threshold, weight=s.unlabelled_weight, ratio=s.unlabelled_ratio
        )
        fit = fit_network(
            spec,
            recipe,
            train,
            val,
            seed=s.seed,
            network=network,
            epochs=s.epochs,
            progress=False,
            unlabelled=data.unlabelled,
            semi=semi,
        )
        best = fit.model
        targets = (val.labels == spec.positive_index).astype(np.int64)
        _, threshold = calibrate(best, logits_of(best, val.images), targets)
        folder = get_settings().artifacts_dir / DOMAIN / spec.name / version
        folder.mkdir(parents=True, exist_ok=True)
        artifact = folder / "model.safetensors"
        save_checkpoint(best, artifact, metadata={"task": spec.name, "version": version})
        profile = fit_profile(best, train.images, train.labels, val.images)
        ood = save_profile(profile, folder / "ood.safetensors")
        metrics = {
            "val_roc_auc": roc_auc(targets, _probabilities(best, val.images)),
            "decision_threshold": threshold,
            "epochs_run": float(fit.result.epochs_run),
        }
        pseudo = ""
        if fit.pseudo_labels is not None and data.unlabelled is not None:
            metrics.update({f"pseudo_labels_{k}": float(v) for k, v in fit.pseudo_labels.items()})
            used = {k: v for k, v in fit.pseudo_labels.items() if k != "unlabelled_seen"}
            pseudo = (
                f"; semi-supervised on {len(data.unlabelled)} unlabelled images (tau "
                f"{s.threshold}, lambda_u {s.unlabelled_weight}, mu {s.unlabelled_ratio}, "
                f"class-balanced): pseudo-labels used {used} of "
                f"{fit.pseudo_labels['unlabelled_seen']} draws"
            )
        card = build_card(
            spec,
            metrics=metrics,
            reproduce_command=f"verticals retrain {DOMAIN} --model {spec.name}",
            training_data=f"{training.data_window} ({training.detail['train_classes']}) minus "
            f"a carved validation split for calibration{pseudo}",
            description=f"MONAI ResNet at {data.size}x{data.size}, retrained from scratch with "
            f"the {spec.name} recipe, seed={s.seed}, epochs={fit.result.epochs_run}",
            input_size=data.size,
        )
        extra = ModelExtra(
            task=spec.name, network=network, threshold=threshold, source="retrain", seed=s.seed
        )
        classifier = Classifier(extra, artifact, version, card)
        return Challenger(
            model=classifier,
            artifact=artifact,
            card=card,
            extra={**extra.to_json(), "pseudo_labels": fit.pseudo_labels},
            derived={OOD_KIND: ood},
        )

    def load(self, version: ModelVersion) -> Classifier:
        from verticals.domains.medical.model.production import classifier_from_version

        return classifier_from_version(version)

    def evaluate(self, model: Any, training: TrainingSet) -> float:
        """ROC AUC on the curated val split only. The newest reviews are held out of training
        but not trusted as the judge: a batch of wrong reviews large enough to dominate the
        slice would otherwise poison the comparison too (measured: a challenger trained beside
        300 flipped reviews was promoted when they were the newest)."""
        from verticals.domains.medical.model.metrics import roc_auc

        data: _Data = training.data
        n = data.curated or len(data.holdout)
        targets = (data.holdout.labels[:n] == data.spec.positive_index).astype(np.int64)
        return roc_auc(targets, model.predict(data.holdout.images[:n]))

    def champion_notes(self, champion: ModelVersion, training: TrainingSet) -> list[str]:
        if "val splits pooled" in getattr(champion.card, "training_data", ""):
            return [
                f"the champion {champion.version} was trained on the train and val splits "
                "pooled: its figure on the val split is in-sample, the challenger's is not"
            ]
        return []

    def compression_target(
        self, challenger: Challenger, training: TrainingSet, model: str, version: str
    ) -> CompressionTarget | None:
        from verticals.core.compression.target import CompressionTarget
        from verticals.domains.medical.compression import CALIBRATION_SAMPLES
        from verticals.domains.medical.model.metrics import roc_auc

        if not self.settings.compress:
            return None
        data: _Data = training.data
        classifier: Classifier = challenger.model
        targets = (data.holdout.labels == data.spec.positive_index).astype(np.int64)

        def calibration() -> Any:
            rng = np.random.default_rng(0)
            n = min(CALIBRATION_SAMPLES, len(data.train))
            picked = np.sort(rng.choice(len(data.train), n, replace=False))
            for start in range(0, n, 32):
                yield data.train.images[picked[start : start + 32]]

        def metric(predict: Any) -> tuple[float, str]:
            images = data.holdout.images
            scores = np.concatenate(
                [
                    np.asarray(predict(images[i : i + 256])).reshape(-1)
                    for i in range(0, len(images), 256)
                ]
            )
            return roc_auc(targets, scores), "roc_auc"

        return CompressionTarget(
            name=f"{DOMAIN}/{model}",
            module=classifier.torch_module(),
            example_input=classifier.example_input(1),
            calibration=calibration,
            metric=metric,
            fine_tune=None,  # no pruning: a retrain checks the int8 variant serving would use
            version=version,
            max_metric_drop=0.01,
        )
