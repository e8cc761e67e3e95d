"""What a medical model version carries besides its weights, and the shipped baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from verticals.core.errors import IntegrityError, NotFound
from verticals.core.registry import file_sha256, read_verified
from verticals.core.registry.bundle import ShippedBundle, read_bundle
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


WEIGHTS = "weights"
OOD_KIND = "ood-profile"  # the derived artifact kind of a version's OOD profile


def shipped_dir() -> Path:
    from verticals.shared_models.medical import ARTIFACT_DIR

    return ARTIFACT_DIR


def card_file(task: str, folder: Path | None = None) -> Path:
    """``shared_models/medical/<task>.card.json``: core's bundle card of a shipped model (the
    weights, the OOD profile, each with its sha256; ``extra`` is the :class:`ModelExtra`)."""
    return (folder or shipped_dir()) / f"{task}.card.json"


def model_extra(shipped: ShippedBundle) -> ModelExtra:
    return ModelExtra.model_validate(shipped.extra)


def shipped_card(task: str) -> ShippedBundle:
    """The shipped card of ``task`` (NotFound when the package ships none)."""
    path = card_file(task)
    if not path.is_file():
        raise NotFound(f"no shipped model for medical task {task!r}")
    return read_bundle(path)


def shipped_model(task: str) -> tuple[ShippedBundle, Path]:
    """The shipped card and weights of ``task``, after checking the weights' sha256."""
    shipped = shipped_card(task)
    weights = card_file(task).parent / shipped.files[WEIGHTS].file
    expected = shipped.files[WEIGHTS].sha256
    if not weights.is_file() or file_sha256(weights) != expected:
        raise IntegrityError(
            f"shipped weights of {task!r} are missing or fail their sha256 check",
            {"path": str(weights), "expected": expected},
        )
    return shipped, weights


def shipped_ood_profile(shipped: ShippedBundle) -> bytes | None:
    """The shipped OOD profile's bytes after their sha256 check (None: the card has none)."""
    item = shipped.files.get(OOD_KIND)
    if item is None:
        return None
    return read_verified(
        shipped_dir() / item.file, item.sha256, what=f"shipped OOD profile of {shipped.card.name}"
    )
