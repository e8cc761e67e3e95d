"""The study workflow shared by the API and the dashboard.

``create``: decode → choose the task → de-identify (before anything is stored) → model input →
batched prediction and Grad-CAM → files written to a private folder → one transaction holding
the study row and the audit record (``verticals.core.audit``), committed before the caller
answers. An idempotency key replays the stored response without scoring again.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from verticals.core.audit import (
    AuditContext,
    Outcome,
    audited,
    input_sha256,
    record_action,
    stored_output,
)
from verticals.core.auth import Principal
from verticals.core.db import session_scope
from verticals.core.errors import InvalidInput, NotFound
from verticals.core.labeling import store
from verticals.domains.medical import model_api
from verticals.domains.medical.archive import deidentified_part10, uid_mapper, write_study_files
from verticals.domains.medical.deid import refuse_burned_in
from verticals.domains.medical.imaging import (
    decode_bytes,
    prepare_upload,
)
from verticals.domains.medical.monitoring import image_summaries
from verticals.domains.medical.queue import queue_study, study_item
from verticals.domains.medical.routing import resolve_task
from verticals.domains.medical.runtime import InferenceEngine, model_input
from verticals.domains.medical.schemas import (
    Finding,
    ReviewIn,
    ReviewOut,
    StudyCreated,
    StudyOut,
    StudyStatus,
    StudySummary,
)
from verticals.domains.medical.scope import decide, fit_warnings
from verticals.domains.medical.storage import StudyFiles, files_for, files_from_row
from verticals.domains.medical.tables import StudyRow

log = logging.getLogger(__name__)


def _findings(spec: Any, probability: float) -> list[Finding]:
    labels = list(spec.labels)
    positive = spec.positive_label
    if len(labels) == 2:
        return [
            Finding(label=label, probability=probability if label == positive else 1 - probability)
            for label in labels
        ]
    return [Finding(label=positive, probability=probability)]


class StudyService:
    """Create, read and review studies. Stateless apart from the inference engine."""

    def __init__(self, engine: InferenceEngine) -> None:
        self.engine = engine

    # ------------------------------------------------------------------ create

    def create(
        self,
        data: bytes,
        *,
        filename: str = "",
        task: str | None,
        ctx: AuditContext,
        idempotency_key: str | None = None,
    ) -> StudyCreated:
        """Everything the form and the headers can refuse is refused before a pixel is decoded:
        an unknown ``task`` first, then every size limit (``imaging.prepare_upload``, headers
        read once), the task chosen from the headers when none is given, burned-in pixels."""
        tasks = model_api.tasks()
        requested = task if task is not None and task.strip() else None
        if requested is not None:
            resolve_task(tasks, requested=requested, modality=None, body_part=None)
        payload = {"file_sha256": input_sha256(data), "task": (task or "").strip().lower()}
        if idempotency_key is not None:
            with session_scope() as session:
                previous = stored_output(session, ctx, idempotency_key, input_sha256(payload))
            if previous is not None:
                return self._replayed(previous, tenant=ctx.tenant)

        prepared = prepare_upload(data)
        summary = prepared.summary()
        task_name = resolve_task(
            tasks, requested=requested, modality=summary.modality, body_part=summary.body_part
        )
        if prepared.header is not None:  # an uploaded DICOM; our own PNG/JPEG wrapper is clean
            refuse_burned_in(prepared.header)  # type: ignore[arg-type]
        decoded = decode_bytes(prepared, filename)
        spec = tasks[task_name]
        header = {  # what the upload says it is, read before de-identification drops it
            "modality": decoded.modality,
            "body_part": decoded.body_part,
            "photometric": decoded.photometric,
        }
        image_bytes, identity = deidentified_part10(decoded)

        fit = fit_warnings(spec, **header)
        x = model_input(decoded.pixels, self.engine.input_size(task_name))
        prediction = self.engine.predict(task_name, x)
        cam = self.engine.gradcam(task_name, x)
        # one pass gives the OOD score and the penultimate features monitoring summarises
        ood_score, penultimate = self.engine.inspect(task_name, x)
        (image_summary,) = image_summaries(
            x[None], None if penultimate is None else penultimate[None]
        )
        threshold = float(getattr(self.engine.classifier(task_name), "threshold", 0.5) or 0.5)
        probability = float(np.clip(prediction.probability, 0.0, 1.0))
        findings = _findings(spec, probability)
        decision = decide(spec, probability, threshold, fit=fit, ood_score=ood_score)

        study_id = uuid.uuid4().hex
        files = files_for(study_id)
        created = StudyCreated(
            study_id=study_id,
            task=task_name,
            finding=decision.finding,
            predicted_label=decision.predicted_label,
            positive_label=spec.positive_label,
            threshold=threshold,
            in_scope=decision.in_scope,
            ood_score=None if ood_score is None else round(ood_score, 4),
            warnings=decision.warnings,
            findings=findings,
            model_version=prediction.model_version,
        )
        try:
            write_study_files(files, image_bytes, decoded, cam)

            def compute(session: Session) -> Outcome:
                session.add(
                    StudyRow(
                        id=study_id,
                        tenant=ctx.tenant,
                        api_key_id=ctx.api_key_id,
                        task=task_name,
                        status="predicted",
                        model_version=prediction.model_version,
                        positive_label=spec.positive_label,
                        probability=probability,
                        predicted_label=decision.predicted_label,
                        finding=decision.finding,
                        in_scope=decision.in_scope,
                        ood_score=created.ood_score,
                        warnings=decision.warnings,
                        threshold=threshold,
                        findings=[f.model_dump() for f in findings],
                        source_kind=decoded.kind,
                        modality=identity["modality"],
                        body_part=identity["body_part"],
                        rows=int(decoded.pixels.shape[0]),
                        columns=int(decoded.pixels.shape[1]),
                        window_center=float(decoded.window.center),
                        window_width=float(decoded.window.width),
                        study_uid=identity["study_uid"],
                        series_uid=identity["series_uid"],
                        sop_instance_uid=identity["sop_instance_uid"],
                        sop_class_uid=identity["sop_class_uid"],
                        notes=list(decoded.notes),
                        storage_dir=files.relative(),
                        image_summary=image_summary,
                    )
                )
                queue_study(
                    session,
                    tenant=ctx.tenant,
                    task=task_name,
                    study_id=study_id,
                    probability=probability,
                    threshold=threshold,
                    in_scope=decision.in_scope,
                    ood_score=created.ood_score,
                    model_version=prediction.model_version,
                )
                return Outcome(
                    output=created.model_dump(mode="json"),
                    model_version=prediction.model_version,
                    model=task_name,
                )

            output = audited(ctx, payload=payload, compute=compute, idempotency_key=idempotency_key)
        except BaseException:
            files.remove()
            raise
        result = self._replayed(output, tenant=ctx.tenant)
        if result.study_id != study_id:  # a concurrent retry with the same key won the race
            files.remove()
        log.info(
            "medical study %s: task=%s model=%s",
            result.study_id,
            task_name,
            prediction.model_version,
        )
        return result

    def _replayed(self, stored: dict[str, Any], *, tenant: str) -> StudyCreated:
        """The answer stored for an idempotency key. One stored before the answer carried the
        decision (medical_0002) is rebuilt from its study row, which that migration filled."""
        try:
            return StudyCreated.model_validate(stored)
        except ValidationError:
            study = self.get(str(stored.get("study_id", "")), tenant=tenant)
            fields = set(StudyCreated.model_fields)
            return StudyCreated.model_validate(study.model_dump(include=fields))

    # ------------------------------------------------------------------ read

    def _row(self, session: Session, study_id: str, tenant: str) -> StudyRow:
        """``tenant``'s study (another tenant's is unknown: NotFound, as a missing one)."""
        row = session.get(StudyRow, study_id) if _valid_id(study_id) else None
        if row is None or row.tenant != tenant:
            raise NotFound(f"no study {study_id!r}")
        return row

    def _latest_review(self, session: Session, row: StudyRow) -> ReviewOut | None:
        """The newest review of a study: the latest annotation of its labeling-queue item."""
        item = study_item(session, tenant=row.tenant, task=row.task, study_id=row.id)
        history = store.annotations_of(session, item) if item is not None else []
        if not history:
            return None
        latest = history[-1]
        return ReviewOut(
            study_id=row.id,
            label=latest.label,
            agrees=bool(latest.detail.get("agrees", latest.label == row.predicted_label)),
            comment=latest.note,
            model_version=str(latest.detail.get("model_version", row.model_version)),
            created_at=latest.created_at,
        )

    def get(self, study_id: str, *, tenant: str) -> StudyOut:
        with session_scope() as session:
            row = self._row(session, study_id, tenant)
            review = self._latest_review(session, row)
            return _study_out(row, review)

    def list(
        self, limit: int = 50, status: StudyStatus | None = None, *, tenant: str
    ) -> list[StudySummary]:
        """``tenant``'s newest studies (the worklist)."""
        with session_scope() as session:
            query = (
                select(StudyRow)
                .where(StudyRow.tenant == tenant)
                .order_by(StudyRow.created_at.desc(), StudyRow.id)
                .limit(limit)
            )
            if status is not None:
                query = query.where(StudyRow.status == status)
            return [StudySummary.model_validate(row) for row in session.scalars(query)]

    def files(self, study_id: str, *, tenant: str) -> StudyFiles:
        with session_scope() as session:
            return files_from_row(self._row(session, study_id, tenant).storage_dir)

    def heatmap(self, study_id: str, *, tenant: str) -> bytes:
        files = self.files(study_id, tenant=tenant)
        return files.require(files.heatmap).read_bytes()

    def fhir_report(self, study_id: str, *, tenant: str) -> dict[str, Any]:
        from verticals.domains.medical.fhir import build_report

        with session_scope() as session:
            row = self._row(session, study_id, tenant)
            review = self._latest_review(session, row)
            return build_report(
                study_id=row.id,
                task=row.task,
                created_at=row.created_at,
                model_version=row.model_version,
                study_uid=row.study_uid,
                findings=list(row.findings),
                predicted_label=row.finding,
                review_label=review.label if review else None,
                review_comment=review.comment if review else None,
                issued=review.created_at if review else row.created_at,
            )

    def structured_report(self, study_id: str, *, tenant: str) -> bytes:
        from verticals.domains.medical.sr import build_sr

        with session_scope() as session:
            row = self._row(session, study_id, tenant)
            files = files_from_row(row.storage_dir)
            task, version, findings, label = (
                row.task,
                row.model_version,
                list(row.findings),
                row.finding,
            )
        if files.sr.is_file():
            return files.sr.read_bytes()
        mapper = uid_mapper()
        data = build_sr(
            files.require(files.image).read_bytes(),
            task=task,
            model_version=version,
            findings=findings,
            predicted_label=label,
            uid_factory=mapper.fresh,
        )
        tmp = files.sr.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(files.sr)
        return data

    def display_values(self, study_id: str, *, tenant: str) -> tuple[np.ndarray, np.ndarray]:
        """(modality values [h, w] for window/level, Grad-CAM [S, S]) of a study."""
        from verticals.domains.medical.storage import load_array

        files = self.files(study_id, tenant=tenant)
        return load_array(files.require(files.display)), load_array(files.require(files.cam))

    # ------------------------------------------------------------------ review

    def review(self, study_id: str, body: ReviewIn, *, actor: Principal) -> ReviewOut:
        """Confirm or correct a finding, logged under the API key or the signed-in clinician."""
        tasks = model_api.tasks()
        with session_scope() as session:
            row = self._row(session, study_id, actor.tenant)
            labels = (
                list(tasks[row.task].labels)
                if row.task in tasks
                else [f["label"] for f in row.findings]
            )
            label = body.label.strip()
            if label not in labels:
                raise InvalidInput(
                    f"label {body.label!r} is not a label of task {row.task!r}",
                    {"field": "label", "allowed": labels},
                )
            agrees = label == row.predicted_label
            item = study_item(session, tenant=row.tenant, task=row.task, study_id=row.id)
            if item is None:  # a study stored before the labeling queue
                queue_study(
                    session,
                    tenant=row.tenant,
                    task=row.task,
                    study_id=row.id,
                    probability=row.probability,
                    threshold=row.threshold,
                    in_scope=row.in_scope,
                    ood_score=row.ood_score,
                    model_version=row.model_version,
                )
                item = study_item(session, tenant=row.tenant, task=row.task, study_id=row.id)
            assert item is not None
            annotation = store.annotate_as(
                session,
                item,
                label,
                actor,
                note=body.comment or None,
                detail={"agrees": agrees, "model_version": row.model_version},
            )
            record_action(
                session,
                actor,
                domain="medical",
                action="review",
                target=row.id,
                detail={"task": row.task, "label": label, "agrees": agrees},
            )
            row.status = "reviewed"
            return ReviewOut(
                study_id=row.id,
                label=label,
                agrees=agrees,
                comment=annotation.note,
                model_version=row.model_version,
                created_at=annotation.created_at,
            )

    def export_feedback(self, task: str, out_dir: Path, *, tenant: str | None = None) -> int:
        """Write reviewed studies of ``task`` as a retraining folder: the de-identified
        ``<study_id>.dcm`` files plus ``labels.csv`` (``file,label``: the clinician's latest
        label), the folder format ``verticals evaluate medical --data DIR`` reads. Returns n.
        An operator's command: every tenant's studies, or ``tenant``'s only when given."""
        import csv
        import shutil

        out_dir.mkdir(parents=True, exist_ok=True)
        rows = []
        with session_scope() as session:
            query = select(StudyRow).where(StudyRow.task == task, StudyRow.status == "reviewed")
            if tenant is not None:
                query = query.where(StudyRow.tenant == tenant)
            studies = session.scalars(query.order_by(StudyRow.created_at)).all()
            for study in studies:
                review = self._latest_review(session, study)
                image = files_from_row(study.storage_dir).image
                if review is None or not image.is_file():
                    continue
                shutil.copyfile(image, out_dir / f"{study.id}.dcm")
                rows.append({"file": f"{study.id}.dcm", "label": review.label})
        with open(out_dir / "labels.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["file", "label"])
            writer.writeheader()
            writer.writerows(rows)
        return len(rows)


def _valid_id(study_id: str) -> bool:
    return len(study_id) == 32 and all(c in "0123456789abcdef" for c in study_id)


def _study_out(row: StudyRow, review: ReviewOut | None) -> StudyOut:
    study = StudyOut.model_validate(row)
    study.review = review
    return study
