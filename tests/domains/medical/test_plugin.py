"""The domain contract: discovery, commands, migrations, demo data, status, delegation."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner
from verticals.domains.medical import model_api
from verticals.domains.medical.imaging import decode_bytes, load_image_file
from verticals.domains.medical.plugin import MedicalDomain
from verticals.domains.medical.routing import resolve_task


def test_discovered_through_the_entry_point(plugins):
    domain = plugins.domains["medical"]
    assert isinstance(domain, MedicalDomain)
    assert domain.name == "medical" and domain.title
    assert set(domain.commands()) == {"train", "evaluate", "bench"}
    migrations = domain.migrations_dir()
    assert migrations is not None and (migrations / "medical_0001.py").is_file()


def test_tables_exist_after_migration(db):
    from verticals.core.db.migrate import table_names

    assert {"medical_studies"} <= table_names(db)


def test_demo_samples_are_phi_free_and_route_to_their_task(fake_models):
    demo = MedicalDomain().demo_data()
    assert demo is not None
    files = sorted(demo.rglob("*.dcm"))
    assert len(files) == 8
    assert sum(p.stat().st_size for p in demo.rglob("*")) < 100_000
    assert "CC BY 4.0" in (demo / "README.md").read_text()
    for path in files:
        image = decode_bytes(path.read_bytes())
        assert image.pixels.shape == (28, 28)
        assert str(image.dataset.PatientName).startswith("DEMO^")
        assert image.dataset.PatientBirthDate == "" and image.dataset.StudyDate == ""
        task = resolve_task(
            model_api.tasks(), requested=None, modality=image.modality, body_part=image.body_part
        )
        assert task == path.parent.name
    for task in ("pneumonia", "breast"):
        with open(demo / task / "labels.csv") as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == 4
        labels = model_api.tasks()[task].labels
        assert {r["label"] for r in rows} == set(labels)
        for row in rows:
            assert load_image_file(demo / task / row["file"]).dtype == np.float32


def test_demo_pixels_are_medmnist_training_images():
    source = Path("/work/shared/data/medmnist/pneumoniamnist.npz")
    if not source.is_file():
        pytest.skip("shared MedMNIST data not present")
    demo = MedicalDomain().demo_data()
    with np.load(source) as npz:
        train = npz["train_images"]
    image = decode_bytes((demo / "pneumonia" / "pneumonia_pneumonia_0.dcm").read_bytes())
    np.testing.assert_array_equal(image.modality_values.astype(np.uint8), train[0])


def test_status_and_setup(fake_models):
    domain = MedicalDomain()
    assert domain.status().ready is False
    assert domain.ensure_production_model() == "breast=fake-1,pneumonia=fake-1"
    domain.setup()
    status = domain.status()
    assert status.ready and status.model_version == "breast=fake-1,pneumonia=fake-1"
    domain.close()


def test_evaluate_delegates(monkeypatch):
    calls = []

    def fake_evaluate(task, data_file, split):
        calls.append((task, data_file, split))
        return {"roc_auc": 0.9, "accuracy": 0.8, "n": 10}

    monkeypatch.setattr(model_api, "evaluate_task", fake_evaluate)
    metrics = MedicalDomain().evaluate(Path("x.npz"), task="breast", split="val")
    assert metrics == {"roc_auc": 0.9, "accuracy": 0.8, "n": 10.0}
    assert calls == [("breast", Path("x.npz"), "val")]


def _cli(command):
    import typer

    app = typer.Typer()
    app.command()(command)
    return app


def test_evaluate_command_prints_json_last(monkeypatch, fake_models, db, tmp_path):
    monkeypatch.setattr(
        model_api,
        "evaluate_task",
        lambda task, data, split: {"roc_auc": 0.97, "accuracy": 0.91, "n": 624},
    )
    command = MedicalDomain().commands()["evaluate"]
    data = tmp_path / "d.npz"
    data.write_bytes(b"")
    result = CliRunner().invoke(
        _cli(command), ["--task", "pneumonia", "--data", str(data), "--split", "test", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1]) == {
        "roc_auc": 0.97,
        "accuracy": 0.91,
        "n": 624,
    }
    bad = CliRunner().invoke(_cli(command), ["--task", "brain", "--data", str(data)])
    assert bad.exit_code != 0


def test_train_command_delegates(monkeypatch, fake_models, db):
    from pydantic import BaseModel

    class Report(BaseModel):
        task: str
        version: str
        promoted: bool
        seconds: float
        metrics: dict[str, float]

    seen = {}

    def fake_train(task, data, nproc, seed, **options):
        seen.update(task=task, data=data, nproc=nproc, seed=seed)
        return Report(
            task=task, version="v9", promoted=True, seconds=1.0, metrics={"val_roc_auc": 0.9}
        )

    monkeypatch.setattr(model_api, "train_task", fake_train)
    command = MedicalDomain().commands()["train"]
    result = CliRunner().invoke(_cli(command), ["--task", "breast", "--nproc", "2", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["version"] == "v9"
    assert seen == {"task": "breast", "data": None, "nproc": 2, "seed": 0}


def test_migration_branch_downgrades_and_upgrades(db, plugins):
    from verticals.core.db.migrate import downgrade, table_names, upgrade

    downgrade(plugins.migration_dirs(), target="medical@base")
    assert not {"medical_studies"} & table_names(db)
    assert "prediction_records" in table_names(db)  # core untouched
    upgrade(plugins.migration_dirs())
    assert {"medical_studies"} <= table_names(db)
