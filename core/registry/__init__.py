"""Model registry: versions, stages, metrics, model cards; sha256 checked on every load."""

from verticals.core.registry.cards import ModelCard, TensorSpec
from verticals.core.registry.store import (
    STAGES,
    ModelVersion,
    file_sha256,
    get_version,
    list_versions,
    production_version,
    promote,
    register,
    verified_artifact,
)

__all__ = [
    "STAGES",
    "ModelCard",
    "ModelVersion",
    "TensorSpec",
    "file_sha256",
    "get_version",
    "list_versions",
    "production_version",
    "promote",
    "register",
    "verified_artifact",
]
