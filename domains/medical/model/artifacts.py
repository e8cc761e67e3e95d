"""What a medical model version carries besides its weights, and the shipped baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from verticals.core.errors import IntegrityError, NotFound
from verticals.core.registry import ModelCard, file_sha256, read_verified
from verticals.domains.medical.model.networks import NetworkSpec

DOMAIN = "medical"


class ModelExtra(BaseModel):
    """Stored in the registry's ``extra`` column: enough to rebuild and use the model."""

    task: str
    network: NetworkSpec
    threshold: float = Field(ge=0, le=1, description="probability cut-off chosen on validation")
    source: str = "trained"
    init_from: str | None = None
    seed: int | None = None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class ShippedModel(BaseModel):
    """``shared_models/medical/<task>.card.json``: the card of a shipped production model."""

    task: str
    version: str
    weights_file: str
    sha256: str
    extra: ModelExtra
    card: ModelCard
    ood_file: str | None = Field(None, description="out-of-distribution profile (model.ood)")
    ood_sha256: str | None = None


def shipped_dir() -> Path:
    from verticals.shared_models.medical import ARTIFACT_DIR

    return ARTIFACT_DIR


def shipped_model(task: str) -> tuple[ShippedModel, Path]:
    """The shipped card and weights of ``task``, after checking the weights' sha256."""
    card_path = shipped_dir() / f"{task}.card.json"
    if not card_path.is_file():
        raise NotFound(f"no shipped model for medical task {task!r}")
    shipped = ShippedModel.model_validate_json(card_path.read_text())
    weights = card_path.parent / shipped.weights_file
    if not weights.is_file() or file_sha256(weights) != shipped.sha256:
        raise IntegrityError(
            f"shipped weights of {task!r} are missing or fail their sha256 check",
            {"path": str(weights), "expected": shipped.sha256},
        )
    return shipped, weights


def shipped_ood_profile(shipped: ShippedModel) -> bytes | None:
    """The shipped OOD profile's bytes after their sha256 check (None: the card has none)."""
    if not shipped.ood_file or not shipped.ood_sha256:
        return None
    path = shipped_dir() / shipped.ood_file
    return read_verified(path, shipped.ood_sha256, what=f"shipped OOD profile of {shipped.task}")
