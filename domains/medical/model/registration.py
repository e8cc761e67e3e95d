"""Register a finished training run and promote it when it beats production."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from verticals.core.config import get_settings
from verticals.core.db import session_scope
from verticals.core.registry import production_version
from verticals.core.registry.gate import PromotionGate
from verticals.core.registry.shipping import register_and_promote
from verticals.domains.medical.model.artifacts import DOMAIN, ModelExtra
from verticals.domains.medical.model.cards import build_card
from verticals.domains.medical.model.data import ImageSet
from verticals.domains.medical.model.metrics import roc_auc
from verticals.domains.medical.model.tasks import get_task

if TYPE_CHECKING:
    from sqlalchemy.orm import Session
    from verticals.core.registry import ModelVersion
    from verticals.core.registry.cards import ModelCard
    from verticals.domains.medical.model.training import TrainReport


def register_ood_profile(session: Session, version: ModelVersion, data_file: Path) -> None:
    """Fit the version's out-of-distribution profile (``model.ood``) and register it beside the
    weights as its ``ood-profile`` derived artifact (sha256-checked on every load)."""
    from verticals.core.registry import register_derived
    from verticals.domains.medical.model.ood import fit_profile_on_file, save_profile
    from verticals.domains.medical.model.production import OOD_KIND, classifier_from_version

    classifier = classifier_from_version(version, session)
    profile = fit_profile_on_file(
        classifier.torch_module().logits, classifier.input_size, data_file
    )
    path = save_profile(profile, Path(version.artifact_path).with_name("ood.safetensors"))
    register_derived(session, version, OOD_KIND, path)


def _stored_checkpoint(task: str, version: str, checkpoint: Path) -> Path:
    """The checkpoint copied to ``<artifacts>/medical/<task>/<version>/model.safetensors``."""
    settings = get_settings()
    settings.ensure_home()
    target = settings.artifacts_dir / DOMAIN / task / version / "model.safetensors"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(checkpoint, target)
    return target


def _averaged_note(report: TrainReport) -> str:
    if not report.averaged_epochs:
        return ""
    return f", mean weights of the last {report.averaged_epochs} epochs"


def _register_then_promote(
    session: Session,
    report: TrainReport,
    target: Path,
    card: ModelCard,
    data_file: Path,
    *,
    extra: dict,
    metric: str,
    baseline: float | None,
) -> TrainReport:
    """Register the run (staging) with its OOD profile; promote it when the gate accepts its
    ``metric`` against ``baseline`` (production's, measured afresh or registered)."""
    outcome = register_and_promote(
        session,
        domain=DOMAIN,
        name=report.task,
        artifact_path=target,
        card=card.model_copy(update={"version": report.version, "metrics": report.metrics}),
        metric=metric,
        gate=PromotionGate(f"{DOMAIN}/{report.task}"),
        extra=extra,
        baseline=baseline,
    )
    register_ood_profile(session, outcome.version, data_file)
    return report.model_copy(
        update={"registered": True, "promoted": outcome.promoted, "artifact": str(target)}
    )


def register_run(
    report: TrainReport, checkpoint: Path, extra: ModelExtra, data_file: Path, val_set: ImageSet
) -> TrainReport:
    """Copy the checkpoint into the artifacts folder, register it (staging), and promote it when
    its carved-validation AUC beats the production model's on the same split."""
    from verticals.domains.medical.model.production import classifier_from_version

    spec = get_task(report.task)
    target = _stored_checkpoint(spec.name, report.version, checkpoint)
    state = checkpoint.with_suffix(".json")
    if state.is_file():
        shutil.copyfile(state, target.with_suffix(".json"))
    command = f"verticals train medical --task {spec.name} --seed {report.seed}"
    if report.world_size > 1:
        command += f" --nproc {report.world_size}"
    if report.epochs_override:
        command += f" --epochs {report.epochs_override}"
    card = build_card(
        spec,
        metrics=report.metrics,
        reproduce_command=command + f" --data {data_file}",
        training_data=f"{data_file} (train split minus the carved validation split)",
        description=f"MONAI ResNet at {report.input_size}x{report.input_size}, "
        f"init_from={report.init_from}, seed={report.seed}" + _averaged_note(report),
        input_size=report.input_size,
    )
    with session_scope() as session:
        current = production_version(session, DOMAIN, spec.name)
        baseline = None
        if current is not None:  # production scored afresh on this run's validation split
            targets = (val_set.labels == spec.positive_index).astype(np.int64)
            auc = roc_auc(
                targets, classifier_from_version(current, session).predict(val_set.images)
            )
            baseline = auc if np.isfinite(auc) else None
        return _register_then_promote(
            session,
            report,
            target,
            card,
            data_file,
            extra={**extra.to_json(), "production_val_roc_auc": baseline},
            metric="val_roc_auc",
            baseline=baseline,
        )


def register_cv_run(
    report: TrainReport, checkpoint: Path, extra: ModelExtra, data_file: Path
) -> TrainReport:
    """Register a cross-validated run (staging) and promote it when production has no k-fold
    figures or a lower ``cv_roc_auc_mean`` (a final model has no held-out split of its own)."""
    from verticals.domains.medical.model.crossval import card_texts

    spec = get_task(report.task)
    target = _stored_checkpoint(spec.name, report.version, checkpoint)
    command = f"verticals train medical --task {spec.name} --cv {report.cv} --seed {report.seed}"
    if report.epochs_override:
        command += f" --epochs {report.epochs_override}"
    card = build_card(
        spec,
        metrics=report.metrics,
        reproduce_command=command + f" --data {data_file}",
        training_data=f"{data_file} (train and val splits pooled)",
        description=f"MONAI ResNet at {report.input_size}x{report.input_size}, seed="
        f"{report.seed}, {report.cv}-fold cross-validated recipe, final model on all data"
        + _averaged_note(report),
        input_size=report.input_size,
        **card_texts(spec, report.metrics),
    )
    with session_scope() as session:
        current = production_version(session, DOMAIN, spec.name)
        baseline = (current.metrics or {}).get("cv_roc_auc_mean") if current else None
        return _register_then_promote(
            session,
            report,
            target,
            card,
            data_file,
            extra={**extra.to_json(), "production_cv_roc_auc_mean": baseline},
            metric="cv_roc_auc_mean",
            baseline=baseline,
        )
