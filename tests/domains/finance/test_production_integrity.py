"""What is checked is what is loaded: a model file swapped after its sha256 check is never
served nor registered as trusted."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

from verticals.core.db import session_scope
from verticals.core.registry import integrity, list_versions
from verticals.domains.finance import production
from verticals.domains.finance.config import MODEL_NAME
from verticals.domains.finance.model import FraudModel


def _swap_after_check(
    monkeypatch, digest: str, swap: Callable[[], None], restore: Callable[[], None] | None = None
) -> list[int]:
    """Run ``swap`` once, right after the verifying code has computed ``digest``; ``restore``,
    if given, right after the next digest computed (a transient swap)."""
    fired: list[int] = []

    class _Hash:
        def __init__(self, *args) -> None:
            self._inner = hashlib.sha256(*args)

        def update(self, data) -> None:
            self._inner.update(data)

        def hexdigest(self) -> str:
            value = self._inner.hexdigest()
            if not fired:
                if value == digest:
                    fired.append(1)
                    swap()
            elif len(fired) == 1:
                fired.append(2)
                if restore is not None:
                    restore()
            return value

    class _Hashlib:
        sha256 = _Hash

    monkeypatch.setattr(integrity, "hashlib", _Hashlib)
    return fired


def _other_model(genuine: Path, out: Path) -> bytes:
    """A valid finance model file that differs from ``genuine`` (another calibration)."""
    model = FraudModel.load(genuine)
    model.meta.calibration.a = model.meta.calibration.a + 7.0
    model.save(out)
    return out.read_bytes()


def test_load_model_serves_the_bytes_it_checked(db, monkeypatch, tmp_path):
    production.ensure_production_model()
    entry = production.production_entry()
    path = Path(entry.artifact_path)
    genuine = FraudModel.load(path).meta
    other = _other_model(path, tmp_path / f"other{path.suffix}")
    fired = _swap_after_check(monkeypatch, entry.sha256, lambda: path.write_bytes(other))
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


def test_registration_never_trusts_a_source_swapped_after_its_check(db, monkeypatch, tmp_path):
    source = tmp_path / "shipped" / production.MODEL_FILE.name
    source.parent.mkdir()
    shutil.copyfile(production.MODEL_FILE, source)
    monkeypatch.setattr(production, "MODEL_FILE", source)
    genuine = source.read_bytes()
    sha = production.shipped_card()["sha256"]
    other = _other_model(source, tmp_path / f"other{source.suffix}")
    fired = _swap_after_check(
        monkeypatch, sha, lambda: source.write_bytes(other), restore=lambda: source.write_bytes(genuine)
    )
    production.ensure_production_model()
    assert fired
    with session_scope() as session:
        rows = list_versions(session, "finance", MODEL_NAME)
    assert len(rows) == 1
    assert rows[0].sha256 == sha
    assert Path(rows[0].artifact_path).read_bytes() == genuine
