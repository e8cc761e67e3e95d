from __future__ import annotations

import json

import pytest
from verticals.core.errors import IntegrityError


def test_plugin_is_discovered_through_its_entry_point(plugins) -> None:
    from verticals.domains.finance.plugin import FinanceDomain

    domain = plugins.get("finance")
    assert isinstance(domain, FinanceDomain)
    assert set(domain.commands()) == {"train", "evaluate", "score", "bench", "backtest"}
    assert (domain.migrations_dir() / "finance_0001.py").is_file()
    assert domain.demo_data().is_file()
    assert domain.status().ready is False  # nothing loaded before setup()


def test_shipped_model_registers_once_and_loads_checked(db, plugins) -> None:
    from verticals.core.db import session_scope
    from verticals.core.registry import list_versions
    from verticals.domains.finance.model.production import load_production_model, shipped_card

    domain = plugins.get("finance")
    version = domain.ensure_production_model()
    assert domain.ensure_production_model() == version
    assert version == shipped_card().card.version
    with session_scope() as s:
        (entry,) = list_versions(s, domain="finance")
    assert entry.stage == "production" and entry.sha256 == shipped_card().files["model"].sha256
    assert entry.card.reproduce_command.startswith("verticals train finance")
    model = load_production_model()
    assert model.version == version
    domain.setup()
    try:
        assert domain.status().ready and domain.status().model_version == version
    finally:
        domain.close()


def test_tampered_artifact_is_refused(db, plugins) -> None:
    from pathlib import Path

    from verticals.domains.finance.model.production import load_production_model, production_entry

    plugins.get("finance").ensure_production_model()
    path = Path(production_entry().artifact_path)
    path.write_bytes(path.read_bytes() + b" ")
    with pytest.raises(IntegrityError, match="sha256"):
        load_production_model()


def test_model_card_is_complete() -> None:
    from verticals.core.registry import ModelCard
    from verticals.shared_models.finance import CARD_FILE

    doc = json.loads(CARD_FILE.read_text())
    card = ModelCard.model_validate(doc["card"])
    for key in ("roc_auc", "average_precision", "card_precision_at_100"):
        assert key in card.metrics and f"validation_{key}" in card.metrics
    assert card.inputs and card.outputs and card.training_data and card.reproduce_command
