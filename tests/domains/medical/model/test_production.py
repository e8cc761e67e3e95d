from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from verticals.core.db import session_scope
from verticals.core.errors import IntegrityError, InvalidInput, ModelUnavailable, NotFound
from verticals.core.registry import list_versions, promote
from verticals.domains.medical.model import (
    TASKS,
    ensure_production_models,
    evaluate_task,
    load_classifier,
    shipped_classifier,
)
from verticals.domains.medical.model.artifacts import shipped_model

MIN_AUC = {"pneumonia": 0.95, "breast": 0.90}  # the shipped models on the official val split
MEDMNIST = Path(__file__).resolve().parents[5] / "shared/data/medmnist"


def _sample_npz(tmp_path: Path, task: str, n: int = 120) -> Path:
    """A MedMNIST-layout file: the official val split when present, else shipped-model noise."""
    source = MEDMNIST / TASKS[task].dataset_file
    if not source.is_file():
        pytest.skip("shared MedMNIST data not present")
    with np.load(source) as npz:
        images, labels = npz["val_images"][:n], npz["val_labels"][:n]
    path = tmp_path / f"{task}.npz"
    np.savez(path, test_images=images, test_labels=labels)
    return path


def n_available(task: str) -> int:
    with np.load(MEDMNIST / TASKS[task].dataset_file) as npz:
        return len(npz["val_labels"])


def test_load_before_ensure_is_unavailable(db):
    with pytest.raises(ModelUnavailable):
        load_classifier("pneumonia")
    with pytest.raises(NotFound):
        load_classifier("knee")


def test_ensure_registers_shipped_models_once(db):
    versions = ensure_production_models()
    assert set(versions) == set(TASKS)
    for task, version in versions.items():
        assert version == shipped_model(task)[0].card.version
    assert ensure_production_models() == versions
    with session_scope() as session:
        rows = list_versions(session, "medical")
    assert len(rows) == len(TASKS) and {r.stage for r in rows} == {"production"}
    card = rows[0].card
    assert card.reproduce_command and card.intended_use and card.inputs[0].value_range == (0, 1)
    assert "decision_threshold" in card.metrics


def test_a_later_start_reads_no_shipped_weights(db, monkeypatch):
    """Start-up registers the shipped weights once; every later start only reads the cards."""
    import verticals.core.registry.bundle as bundle
    import verticals.domains.medical.model.artifacts as artifacts

    versions = ensure_production_models()

    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("shipped weights read again at start-up")

    monkeypatch.setattr(bundle, "read_verified", refuse)
    monkeypatch.setattr(artifacts, "file_sha256", refuse)
    assert ensure_production_models() == versions


def test_archived_shipped_model_is_brought_back(db):
    version = ensure_production_models()["breast"]
    with session_scope() as session:
        promote(session, domain="medical", name="breast", version=version, stage="archived")
    assert ensure_production_models()["breast"] == version


def test_load_classifier_checks_sha256(db):
    ensure_production_models()
    classifier = load_classifier("pneumonia")
    assert classifier.version == shipped_model("pneumonia")[0].card.version
    with session_scope() as session:
        row = [v for v in list_versions(session, "medical", "pneumonia")][0]
    path = Path(row.artifact_path)
    path.write_bytes(path.read_bytes() + b"tampered")
    with pytest.raises(IntegrityError):
        load_classifier("pneumonia")


@pytest.mark.parametrize("task", sorted(TASKS))
def test_evaluate_npz(db, tmp_path, task):
    ensure_production_models()
    metrics = evaluate_task(task, _sample_npz(tmp_path, task), "test")
    assert set(metrics) == {"roc_auc", "accuracy", "n"}
    assert metrics["n"] == min(120, n_available(task))
    assert metrics["roc_auc"] > MIN_AUC[task] and metrics["accuracy"] > 0.75
    with pytest.raises(InvalidInput):
        evaluate_task(task, _sample_npz(tmp_path, task), "train")


def test_evaluate_png_folder_matches_npz(db, tmp_path):
    ensure_production_models()
    npz = _sample_npz(tmp_path, "pneumonia", n=40)
    folder = tmp_path / "pngs"
    folder.mkdir()
    with np.load(npz) as data:
        images, labels = data["test_images"], data["test_labels"].reshape(-1)
    rows = ["file,label"]
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        Image.fromarray(image).save(folder / f"{i}.png")
        rows.append(f"{i}.png,{TASKS['pneumonia'].labels[int(label)] if i % 2 else int(label)}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    from_folder = evaluate_task("pneumonia", folder, "test")
    assert from_folder == pytest.approx(evaluate_task("pneumonia", npz, "test"), abs=1e-6)
    (folder / "labels.csv").write_text("file,label\n../x.png,0\n")
    with pytest.raises(InvalidInput):
        evaluate_task("pneumonia", folder, "test")
    with pytest.raises(InvalidInput):
        evaluate_task("pneumonia", tmp_path / "missing.csv", "test")


def test_shipped_classifier_without_database():
    assert shipped_classifier("breast").spec.positive_label == "malignant"


def test_registered_models_carry_their_verified_ood_profile(db):
    from verticals.core.registry import derived_artifact, production_version

    ensure_production_models()
    assert load_classifier("breast").ood is not None
    with session_scope() as session:
        found = derived_artifact(session, production_version(session, "medical", "breast"),
                                 "ood-profile")
    assert found is not None
    path = Path(found.path)
    path.write_bytes(path.read_bytes()[:-8] + b"tampered")  # e.g. a cut moved to let all in
    with pytest.raises(IntegrityError):
        load_classifier("breast")
