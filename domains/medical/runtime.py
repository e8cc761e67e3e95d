"""Production classifiers behind per-task micro-batchers; Grad-CAM; the model's input image.

Request path: decode → :func:`model_input` (the one preprocessing chain of ``model.preprocess``,
shared with training and evaluation) → :meth:`InferenceEngine.predict` (queued into the task's
``MicroBatcher``; one ``Classifier.predict`` call per batch) → probability and the version that
produced it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from verticals.core.errors import IntegrityError, ModelUnavailable
from verticals.domains.medical import model_api
from verticals.domains.medical.model.preprocess import centre_square, preprocess
from verticals.domains.medical.settings import get_medical_settings

__all__ = ["InferenceEngine", "Prediction", "centre_square", "model_input", "resize"]

log = logging.getLogger(__name__)


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
    """Loaded classifiers and one micro-batcher per task. Thread-safe.

    A task whose model cannot be loaded or whose served graph fails its integrity check is
    unavailable (ModelUnavailable, 503) and listed by :meth:`failures` (``/readyz``). A failed
    graph is not tried again for ``graph_retry_s`` seconds (one integrity error in the log, not
    one per request); :meth:`reload` forgets failures at once.
    """

    graph_retry_s: float = 30.0

    def __init__(self, loader: Callable[[str], model_api.ClassifierLike] | None = None) -> None:
        self._loader = loader
        self._classifiers: dict[str, model_api.ClassifierLike] = {}
        self._batchers: dict[str, object] = {}
        self._predictors: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
        self._failures: dict[str, tuple[str, float | None]] = {}  # why, when the graph failed
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
                except ModelUnavailable as exc:
                    self._failures[task] = (exc.message, None)
                    raise
                except Exception as exc:  # noqa: BLE001 - missing weights, bad sha256...
                    why = f"the medical/{task} model could not be loaded ({type(exc).__name__})"
                    self._failures[task] = (why, None)
                    raise ModelUnavailable(why) from exc
                self._classifiers[task] = found
            return found

    def loaded(self) -> dict[str, str]:
        with self._lock:
            return {task: clf.version for task, clf in self._classifiers.items()}

    def failures(self) -> dict[str, str]:
        """Task → why it is unavailable (load or integrity failures not yet recovered)."""
        with self._lock:
            return {task: why for task, (why, _) in self._failures.items()}

    def reload(self, task: str | None = None) -> None:
        """Forget loaded models (all, or one task): the next request loads production anew."""
        with self._lock:
            for name in [task] if task else list({*self._classifiers, *self._failures}):
                self._classifiers.pop(name, None)
                self._predictors.pop(name, None)
                self._failures.pop(name, None)

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

                batcher = MicroBatcher.from_settings(
                    lambda items, task=task: self._predict_batch(task, items),
                    get_medical_settings().batching,
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
            why, failed_at = self._failures.get(task, ("", None))
        if found is not None:
            return found
        if failed_at is not None and time.monotonic() - failed_at < self.graph_retry_s:
            raise ModelUnavailable(why)
        found = clf.predict
        if get_medical_settings().runtime == "onnx" and hasattr(clf, "torch_module"):
            from verticals.domains.medical.onnx_runtime import onnx_predictor

            try:
                found = onnx_predictor(clf)
            except (IntegrityError, ModelUnavailable) as exc:
                raise self._graph_failed(task, exc) from exc
        with self._lock:
            self._failures.pop(task, None)
            if self._classifiers.get(task) is not clf:  # reloaded meanwhile: do not cache
                return found
            return self._predictors.setdefault(task, found)

    def _graph_failed(self, task: str, exc: Exception) -> ModelUnavailable:
        """Record why ``task``'s served graph is unusable; the 503 says so without file paths."""
        if isinstance(exc, IntegrityError):
            why = (
                f"the medical/{task} model's ONNX graph failed its integrity check; it is not "
                "served (operators: `verticals models verify`)"
            )
            log.error("integrity failure: medical/%s is unavailable: %s", task, exc)
        else:
            why = f"the medical/{task} model's ONNX graph could not be loaded"
            log.error("medical/%s is unavailable: %s", task, exc)
        with self._lock:
            self._failures[task] = (why, time.monotonic())
        return ModelUnavailable(why)

    def _predict_batch(self, task: str, items: list[np.ndarray]) -> list[Prediction]:
        clf = self.classifier(task)
        predict = self.predictor(task)
        probs = np.asarray(predict(np.stack(items).astype(np.float32)), dtype=np.float64)
        probs = probs.reshape(-1)
        return [Prediction(float(p), clf.version) for p in probs]

    def predict(self, task: str, image: np.ndarray) -> Prediction:
        """``image``: ``[1, S, S]`` float32 in [0, 1] at the task's input size."""
        self.predictor(task)  # load, verify and export (or fail with 503) before queueing
        return self._batcher(task).submit_sync(image)

    def ood_score(self, task: str, image: np.ndarray) -> float | None:
        """Distance of ``image`` from the task model's training images / its calibrated cut
        (above 1: out of distribution); None when the model version carries no profile."""
        score = getattr(self.classifier(task), "ood_score", None)
        return None if score is None else score(image)

    def inspect(self, task: str, image: np.ndarray) -> tuple[float | None, np.ndarray | None]:
        """(:meth:`ood_score`, the penultimate-layer features ``[C]``) of ``image`` from one
        forward pass; features None for a classifier that cannot give them."""
        inspect = getattr(self.classifier(task), "inspect", None)
        if inspect is None:
            return self.ood_score(task, image), None
        scores, features = inspect(np.asarray(image)[None])
        return (None if scores is None else float(scores[0])), np.asarray(features[0])

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
