"""The medical domain, registered under the ``verticals.domains`` entry-point group."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verticals.core.plugins import DemoRequest, Domain, DomainStatus
from verticals.domains.medical import model_api

if TYPE_CHECKING:
    from fastapi import APIRouter
    from verticals.core.auth import Principal
    from verticals.core.compression.target import CompressionTarget
    from verticals.core.labeling.simulate import Learner
    from verticals.core.monitoring.spec import WatchSpec
    from verticals.domains.medical.retraining import MedicalRetrainRecipe
    from verticals.domains.medical.runtime import InferenceEngine
    from verticals.domains.medical.service import StudyService

_HERE = Path(__file__).parent


class MedicalDomain(Domain):
    """Imaging diagnosis: DICOM/PNG in, de-identified, findings + Grad-CAM, FHIR and SR out."""

    name = "medical"
    title = "Medical imaging"
    description = (
        "Pneumonia on chest X-rays and malignancy on breast ultrasound (MONAI classifiers); "
        "DICOM de-identified by the PS3.15 basic profile; FHIR R4 and DICOM SR outputs."
    )

    def __init__(self) -> None:
        self._engine: InferenceEngine | None = None
        self._service: StudyService | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ services

    def engine(self) -> InferenceEngine:
        with self._lock:
            if self._engine is None:
                from verticals.domains.medical.runtime import InferenceEngine

                self._engine = InferenceEngine()
            return self._engine

    def service(self) -> StudyService:
        engine = self.engine()
        with self._lock:
            if self._service is None:
                from verticals.domains.medical.service import StudyService

                self._service = StudyService(engine)
            return self._service

    # ------------------------------------------------------------------ contract

    def router(self) -> APIRouter:
        from verticals.domains.medical.api import build_router

        return build_router(self.service)

    def render_page(self, viewer: Principal) -> None:
        from verticals.domains.medical.page import render_page

        render_page(self, viewer)

    def evaluate(self, data_file: Path, **options: Any) -> dict[str, float]:
        """Metrics of the production model of ``options["task"]`` (default ``pneumonia``) on
        ``data_file`` (``options["split"]``, default ``test``)."""
        task = str(options.get("task", "pneumonia"))
        split = str(options.get("split", "test"))
        metrics = model_api.evaluate_task(task, Path(data_file), split)
        return {k: float(v) for k, v in metrics.items()}

    def ensure_production_model(self) -> str:
        versions = model_api.ensure_production_models()
        return ",".join(f"{task}={version}" for task, version in sorted(versions.items()))

    def setup(self) -> None:
        """Load every task's production classifier (sha256-checked) so the first request is fast.

        A task that fails (weights or ONNX graph failing their sha256 check) stays unavailable
        (503) while the others serve; :meth:`status` names it, so ``/readyz`` answers 503."""
        from verticals.core.errors import ModelUnavailable
        from verticals.domains.medical.imaging import quiet_pydicom

        quiet_pydicom()
        engine = self.engine()
        engine.reload()
        for task in model_api.tasks():
            try:
                engine.predictor(task)  # loads, exports to ONNX once (registered) and warms up
            except ModelUnavailable:
                continue  # logged and recorded by the engine; status() reports it

    def status(self) -> DomainStatus:
        failures = self._engine.failures() if self._engine is not None else {}
        loaded = self._engine.loaded() if self._engine is not None else {}
        loaded = {t: v for t, v in loaded.items() if t not in failures}
        tasks = sorted(model_api.tasks())
        missing = [t for t in tasks if t not in loaded]
        version = ",".join(f"{t}={v}" for t, v in sorted(loaded.items())) or None
        detail = "loaded: " + (version or "none")
        for task, why in sorted(failures.items()):
            detail += f"; unavailable: medical/{task}: {why}"
        if not_loaded := [t for t in missing if t not in failures]:
            detail += f"; not loaded: {','.join(not_loaded)}"
        return DomainStatus(ready=not missing, model_version=version, detail=detail)

    def commands(self) -> Mapping[str, Callable[..., Any]]:
        from verticals.domains.medical.cli import bench_command, evaluate_command, train_command

        return {"train": train_command, "evaluate": evaluate_command, "bench": bench_command}

    def migrations_dir(self) -> Path | None:
        return _HERE / "migrations"

    def demo_requests(self) -> list[DemoRequest]:
        """The shipped sample DICOM files (synthetic headers), one upload each (idempotent)."""
        return [
            DemoRequest(
                path="/studies",
                files={"file": (path.name, path.read_bytes(), "application/dicom")},
                headers={"Idempotency-Key": f"demo-{path.parent.name}-{path.name}"},
            )
            for path in sorted((_HERE / "demo").glob("*/*.dcm"))
        ]

    def labeling_learner(
        self, task: str | None, data: Path | None, eval_data: Path | None
    ) -> Learner:
        from verticals.domains.medical.labeling import simulation_learner

        return simulation_learner(task, data, eval_data)

    def compression_target(
        self, model_name: str, data_file: Path | None, split: str
    ) -> CompressionTarget | None:
        from verticals.domains.medical.compression import medical_compression_target

        model_api.ensure_production_models()
        return medical_compression_target(model_name, data_file, split)

    def retraining(self) -> MedicalRetrainRecipe:
        """MedMNIST plus reviewed studies; ``--data`` unlabelled images (semi-supervised)."""
        from verticals.domains.medical.retraining import MedicalRetrainRecipe

        return MedicalRetrainRecipe.from_settings()

    def monitoring(self) -> WatchSpec:
        """Per task: intensity statistics, embedding, OOD score and probability of the stored
        studies against the shipped data (domains/medical/monitoring.py)."""
        from verticals.core.errors import ModelUnavailable
        from verticals.domains.medical.monitoring import watch_spec

        engine, loaded = self.engine(), {}
        for task in model_api.tasks():  # loaded here, outside core's transaction (see there)
            try:
                loaded[task] = engine.classifier(task)
            except ModelUnavailable:
                continue  # its drift waits until it loads, if its reference is not built yet
        return watch_spec(loaded)

    def demo_data(self) -> Path | None:
        return _HERE / "demo"

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
