"""Model registry: versions, stages, metrics, model cards, derived artifacts; every artifact is
opened through the verifying loader (:func:`load_verified`), its sha256 checked on every load."""

from verticals.core.registry.cards import ModelCard, TensorSpec
from verticals.core.registry.derived import (
    ArtifactCheck,
    DerivedArtifact,
    derived_artifact,
    forget_derived,
    list_derived,
    register_derived,
    verified_derived,
    verify_registry,
)
from verticals.core.registry.integrity import file_sha256, load_verified, read_verified
from verticals.core.registry.store import (
    STAGES,
    ModelVersion,
    get_version,
    list_versions,
    production_version,
    promote,
    register,
    verified_artifact,
)

__all__ = [
    "STAGES",
    "ArtifactCheck",
    "DerivedArtifact",
    "ModelCard",
    "ModelVersion",
    "TensorSpec",
    "derived_artifact",
    "file_sha256",
    "forget_derived",
    "get_version",
    "list_derived",
    "list_versions",
    "load_verified",
    "production_version",
    "promote",
    "read_verified",
    "register",
    "register_derived",
    "verified_artifact",
    "verified_derived",
    "verify_registry",
]
