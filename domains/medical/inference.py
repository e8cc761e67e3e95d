"""Production classifiers behind per-task micro-batchers; Grad-CAM; the model's input image.

Request path: decode → :func:`model_input` (the one preprocessing chain of ``model.preprocess``,
shared with training and evaluation) → :meth:`InferenceEngine.predict` (queued into the task's
``MicroBatcher``; one ``Classifier.predict`` call per batch) → probability and the version that
produced it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from verticals.core.errors import ModelUnavailable
from verticals.domains.medical import model_api
from verticals.domains.medical.model.preprocess import centre_square, preprocess
from verticals.domains.medical.settings import get_medical_settings

__all__ = ["InferenceEngine", "Prediction", "centre_square", "model_input", "resize"]


@dataclass(frozen=True)
class Prediction:
    probability: float
    model_version: str


def resize(pixels: np.ndarray, size: int) -> np.ndarray:
    """``[H, W]`` float32 → ``[size, size]`` for display (the dashboard and heatmap PNGs). The
    network's input is made by :func:`model_input`, never by this."""
    from PIL import Image

    if pixels.shape == (size, size):
        return pixels.astype(np.float32)
    image = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.float32))
    shrinking = min(pixels.shape) >= size
    method = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    out = np.asarray(image.resize((size, size), method), dtype=np.float32)
    return np.clip(out, 0.0, 1.0)


def model_input(pixels: np.ndarray, size: int) -> np.ndarray:
    """``[H, W]`` in [0, 1] → ``[1, size, size]`` float32: what the classifier sees (the same
    chain as training and evaluation)."""
    return preprocess(pixels, size)


class InferenceEngine:
    """Loaded classifiers and one micro-batcher per task. Thread-safe."""

    def __init__(self, loader: Callable[[str], model_api.ClassifierLike] | None = None) -> None:
        self._loader = loader
        self._classifiers: dict[str, model_api.ClassifierLike] = {}
        self._batchers: dict[str, object] = {}
        self._predictors: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
        self._lock = threading.Lock()

    def _load(self, task: str) -> model_api.ClassifierLike:
        loader = self._loader or model_api.load_classifier
        return loader(task)

    def classifier(self, task: str) -> model_api.ClassifierLike:
        with self._lock:
            found = self._classifiers.get(task)
            if found is None:
                try:
                    found = self._load(task)
                except ModelUnavailable:
                    raise
                except Exception as exc:  # noqa: BLE001 - missing weights, bad sha256...
                    raise ModelUnavailable(
                        f"the medical/{task} model could not be loaded ({type(exc).__name__})"
                    ) from exc
                self._classifiers[task] = found
            return found

    def loaded(self) -> dict[str, str]:
        with self._lock:
            return {task: clf.version for task, clf in self._classifiers.items()}

    def reload(self, task: str | None = None) -> None:
        """Forget loaded models (all, or one task): the next request loads production anew."""
        with self._lock:
            for name in [task] if task else list(self._classifiers):
                self._classifiers.pop(name, None)
                self._predictors.pop(name, None)

    def input_size(self, task: str) -> int:
        clf = self.classifier(task)
        size = getattr(clf, "input_size", None)
        if size is None:
            size = model_api.tasks()[task].input_size
        return int(size)

    def _batcher(self, task: str):  # noqa: ANN202 - MicroBatcher
        with self._lock:
            batcher = self._batchers.get(task)
            if batcher is None:
                from verticals.core.serving.batching import MicroBatcher

                settings = get_medical_settings()
                batcher = MicroBatcher(
                    lambda items, task=task: self._predict_batch(task, items),
                    max_batch_size=settings.batch_max_size,
                    max_wait_ms=settings.batch_max_wait_ms,
                    max_queue=settings.batch_max_queue,
                    timeout_s=settings.batch_timeout_s,
                    workers=settings.batch_workers,
                    name=f"medical/{task}",
                )
                batcher.start()
                self._batchers[task] = batcher
            return batcher

    def predictor(self, task: str) -> Callable[[np.ndarray], np.ndarray]:
        """The served batch function: ONNX Runtime by default, eager torch when configured or
        when the classifier has no torch module to export (test doubles)."""
        clf = self.classifier(task)
        with self._lock:
            found = self._predictors.get(task)
        if found is not None:
            return found
        found = clf.predict
        if get_medical_settings().runtime == "onnx" and hasattr(clf, "torch_module"):
            from verticals.domains.medical.onnx_runtime import onnx_predictor

            found = onnx_predictor(clf)
        with self._lock:
            if self._classifiers.get(task) is not clf:  # reloaded meanwhile: do not cache
                return found
            return self._predictors.setdefault(task, found)

    def _predict_batch(self, task: str, items: list[np.ndarray]) -> list[Prediction]:
        clf = self.classifier(task)
        predict = self.predictor(task)
        probs = np.asarray(predict(np.stack(items).astype(np.float32)), dtype=np.float64)
        probs = probs.reshape(-1)
        return [Prediction(float(p), clf.version) for p in probs]

    def predict(self, task: str, image: np.ndarray) -> Prediction:
        """``image``: ``[1, S, S]`` float32 in [0, 1] at the task's input size."""
        self.classifier(task)  # load (or fail with 503) before queueing
        return self._batcher(task).submit_sync(image)

    def gradcam(self, task: str, image: np.ndarray) -> np.ndarray:
        """Grad-CAM of the positive class, ``[S, S]`` in [0, 1]."""
        cam = np.asarray(self.classifier(task).gradcam(image), dtype=np.float32)
        cam = np.nan_to_num(cam, nan=0.0, posinf=1.0, neginf=0.0)
        return np.clip(cam, 0.0, 1.0)

    def close(self) -> None:
        with self._lock:
            batchers = list(self._batchers.values())
            self._batchers.clear()
        for batcher in batchers:
            batcher.close()
