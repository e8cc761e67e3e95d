"""What is checked is what is loaded: a model file swapped after its sha256 check is never
served nor registered as trusted."""

from __future__ import annotations

import shutil
from pathlib import Path

from verticals.core.db import session_scope
from verticals.core.registry import list_versions
from verticals.domains.finance.model import production
from verticals.domains.finance.model.fraud_model import FraudModel
from verticals.domains.finance.settings import MODEL_NAME


def _other_model(genuine: Path, out: Path) -> bytes:
    """A valid finance model file that differs from ``genuine`` (another calibration)."""
    model = FraudModel.load(genuine)
    model.meta.calibration.a = model.meta.calibration.a + 7.0
    model.save(out)
    return out.read_bytes()


def test_load_model_serves_the_bytes_it_checked(swap_after_check, db, monkeypatch, tmp_path):
    production.ensure_production_model()
    entry = production.production_entry()
    path = Path(entry.artifact_path)
    genuine = FraudModel.load(path).meta
    other = _other_model(path, tmp_path / f"other{path.suffix}")
    fired = swap_after_check(entry.sha256, lambda: path.write_bytes(other))
    model = production.load_model(entry)
    assert fired  # the file was swapped after its check ...
    assert model.meta == genuine  # ... and the checked model is the one served
    assert model.version == entry.version


def test_load_model_from_bytes_matches_the_file(db):
    production.ensure_production_model()
    entry = production.production_entry()
    from_file = FraudModel.load(Path(entry.artifact_path))
    from_bytes = production.load_model(entry)
    assert from_bytes.meta == from_file.meta
    assert from_bytes.booster.save_raw("json") == from_file.booster.save_raw("json")


def test_registration_never_trusts_a_source_swapped_after_its_check(
    swap_after_check, db, monkeypatch, tmp_path
):
    source = tmp_path / "shipped" / production.MODEL_FILE.name
    source.parent.mkdir()
    shutil.copyfile(production.MODEL_FILE, source)
    monkeypatch.setattr(production, "MODEL_FILE", source)
    genuine = source.read_bytes()
    sha = production.shipped_card().files["model"].sha256
    other = _other_model(source, tmp_path / f"other{source.suffix}")
    fired = swap_after_check(
        sha, lambda: source.write_bytes(other), restore=lambda: source.write_bytes(genuine)
    )
    production.ensure_production_model()
    assert fired
    with session_scope() as session:
        rows = list_versions(session, "finance", MODEL_NAME)
    assert len(rows) == 1
    assert rows[0].sha256 == sha
    assert Path(rows[0].artifact_path).read_bytes() == genuine
