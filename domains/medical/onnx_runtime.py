"""The served form of a classifier: its torch module exported once to ONNX, run by the core
ONNX Runtime factory (TensorRT → CUDA → CPU by availability).

Integrity. The exported (optimised) graph decides every probability served, so it is registered
as a derived artifact (kind ``"onnx"``) of the classifier's registry version, with its sha256,
right after the export; every later load reads it only through the verifying loader (the bytes
hashed are the bytes handed to ONNX Runtime). The cache lives under
``$VERTICALS_HOME/medical/onnx/`` by task, version and the weights' digest. On load:

- registered for these weights and present: served if its sha256 matches; a mismatch raises
  IntegrityError and the model becomes unavailable (503, ``/readyz`` names it). It is never
  re-exported over: that would hide tampering. The operator checks ``verticals models verify``,
  then ``verticals models forget-derived medical/<task> <version> onnx --delete-file`` and the
  next load exports and registers afresh from the (sha256-checked) weights;
- registered but the file is missing, or a file on disk that is not registered for these weights
  (a cache from before registration existed, a crash between export and commit, a file planted
  there): that file is never served; the graph is exported afresh from the verified weights,
  replaces it, and is registered (logged as a warning). The export is byte-for-byte reproducible,
  so a re-export of a missing file matches the digest registered before.

A classifier without a registry version (the shipped model loaded without a database, test
doubles) is exported in memory for the life of the process and never cached on disk.
Concurrent exports of the same graph (several workers starting) are serialised by a file lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from verticals.core.config import get_settings
from verticals.core.errors import IntegrityError

if TYPE_CHECKING:
    from torch import nn
    from verticals.core.registry import ModelVersion
    from verticals.domains.medical.model.inference import Classifier

log = logging.getLogger(__name__)

ONNX_KIND = "onnx"
"""The derived-artifact kind of the served graph in the registry."""

BatchFn = Callable[[np.ndarray], np.ndarray]
"""float32 ``[N, 1, S, S]`` in [0, 1] at the model's input size → ``[N]`` probabilities."""


def _weights_digest(module: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def onnx_cache_path(task: str, version: str, digest: str) -> Path:
    safe_version = "".join(c if c.isalnum() or c in ".-_" else "_" for c in version)
    return get_settings().home / "medical" / "onnx" / f"{task}-{safe_version}-{digest}.onnx"


def registry_version(classifier: Classifier) -> ModelVersion | None:
    """The registered model version the classifier was loaded from (None: not from the registry)."""
    return getattr(classifier, "registry_version", None)


@contextlib.contextmanager
def _export_lock(path: Path) -> Iterator[None]:
    """One exporter per cache file across processes on this host (a no-op without fcntl)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _export(classifier: Classifier, folder: Path) -> Path:
    """Export and optimise the classifier's graph into ``folder`` (numerics checked)."""
    from verticals.core.compression.export import export_onnx, optimize_graph

    raw = folder / "raw.onnx"
    export_onnx(classifier.torch_module(), classifier.example_input(1), raw)
    return optimize_graph(raw, folder / "model.onnx")


def _export_and_register(classifier: Classifier, version: ModelVersion, path: Path) -> bytes:
    from verticals.core.db import session_scope
    from verticals.core.registry import register_derived

    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        optimised = _export(classifier, Path(tmp))
        payload = optimised.read_bytes()
        os.replace(optimised, path)  # atomic: concurrent readers never see half a file
    with session_scope() as session:
        entry = register_derived(session, version, ONNX_KIND, path)
    if entry.sha256 != hashlib.sha256(payload).hexdigest():
        raise IntegrityError(f"{entry.what} changed while being registered", {"path": str(path)})
    log.info("exported %s to %s and registered it (sha256 %s)", entry.what, path.name, entry.sha256)
    return payload


def served_graph(classifier: Classifier) -> tuple[bytes, Path | None]:
    """The verified bytes of the classifier's ONNX graph and its cache file (None when the
    classifier is not from the registry and the graph lives in memory only).

    Raises IntegrityError when the registered graph on disk differs from its registered sha256.
    """
    from verticals.core.db import session_scope
    from verticals.core.registry import derived_artifact, read_verified

    version = registry_version(classifier)
    if version is None:
        with tempfile.TemporaryDirectory() as tmp:
            return _export(classifier, Path(tmp)).read_bytes(), None
    path = onnx_cache_path(
        classifier.task, classifier.version, _weights_digest(classifier.torch_module())
    )
    with _export_lock(path):
        with session_scope() as session:
            registered = derived_artifact(session, version, ONNX_KIND)
        ours = registered is not None and Path(registered.path) == path.resolve()
        if ours and path.exists():
            return read_verified(path, registered.sha256, what=registered.what), path
        if path.exists():
            log.warning(
                "%s is not the registered onnx graph of %s: not served; exporting afresh",
                path.name,
                version.ref,
            )
        elif ours:
            log.warning(
                "the registered onnx graph of %s is missing (%s); exporting afresh",
                version.ref,
                path.name,
            )
        return _export_and_register(classifier, version, path), path


def export_cached(classifier: Classifier) -> Path:
    """The classifier's registered ONNX file, sha256-checked (exported and registered on first
    use). The classifier must come from the registry (``registry_version`` set)."""
    if registry_version(classifier) is None:
        raise IntegrityError(
            f"medical/{classifier.task}:{classifier.version} is not a registered model version; "
            "its ONNX graph is not cached"
        )
    _, path = served_graph(classifier)
    return path  # type: ignore[return-value] - always a file for a registered classifier


def onnx_predictor(classifier: Classifier) -> BatchFn:
    """A batch function running the classifier's ONNX graph on the best available provider.

    Raises IntegrityError when the cached graph fails its sha256 check."""
    from verticals.core.serving.runtime import RuntimeOptions, create_session

    size = classifier.input_size
    payload, path = served_graph(classifier)
    session = create_session(payload, RuntimeOptions(warmup_batch_sizes=[1, 8]))
    session.source = str(path) if path is not None else f"medical/{classifier.task} (in memory)"

    def predict(images: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(images, dtype=np.float32)
        if batch.shape[1:] != (1, size, size):
            return np.asarray(classifier.predict(batch), dtype=np.float32)
        return session.run(batch).reshape(-1).astype(np.float32)

    predict.providers = session.providers  # type: ignore[attr-defined]
    return predict
