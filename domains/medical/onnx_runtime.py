"""The served form of a classifier: its torch module exported once to ONNX, run by the core
ONNX Runtime factory (TensorRT → CUDA → CPU by availability).

The export is cached under ``$VERTICALS_HOME/medical/onnx/`` by task, version and the weights'
digest, so a restart loads it without re-exporting; a changed model gets a new file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from verticals.core.config import get_settings

log = logging.getLogger(__name__)

BatchFn = Callable[[np.ndarray], np.ndarray]
"""float32 ``[N, 1, S, S]`` in [0, 1] at the model's input size → ``[N]`` probabilities."""


def _weights_digest(module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def onnx_cache_path(task: str, version: str, digest: str) -> Path:
    safe_version = "".join(c if c.isalnum() or c in ".-_" else "_" for c in version)
    return get_settings().home / "medical" / "onnx" / f"{task}-{safe_version}-{digest}.onnx"


def export_cached(classifier) -> Path:
    """The classifier's ONNX file (exported and numerics-checked on first use)."""
    from verticals.core.compression.export import export_onnx, optimize_graph

    module = classifier.torch_module()
    path = onnx_cache_path(classifier.task, classifier.version, _weights_digest(module))
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        raw = Path(tmp) / "raw.onnx"
        export_onnx(module, classifier.example_input(1), raw)
        optimised = optimize_graph(raw, Path(tmp) / "model.onnx")
        os.replace(optimised, path)  # atomic: concurrent loaders never see half a file
    log.info("exported medical/%s %s to %s", classifier.task, classifier.version, path.name)
    return path


def onnx_predictor(classifier) -> BatchFn:
    """A batch function running the classifier's ONNX graph on the best available provider."""
    from verticals.core.serving.runtime import RuntimeOptions, create_session

    size = classifier.input_size
    session = create_session(
        export_cached(classifier), RuntimeOptions(warmup_batch_sizes=[1, 8])
    )

    def predict(images: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(images, dtype=np.float32)
        if batch.shape[1:] != (1, size, size):
            return np.asarray(classifier.predict(batch), dtype=np.float32)
        return session.run(batch).reshape(-1).astype(np.float32)

    predict.providers = session.providers  # type: ignore[attr-defined]
    return predict
