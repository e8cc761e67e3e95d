"""A loaded classifier: batched prediction at any input size, Grad-CAM, the torch module."""

from __future__ import annotations

import copy
import threading
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from verticals.core.errors import InvalidInput
from verticals.core.registry import ModelCard, ModelVersion
from verticals.core.training import load_weights
from verticals.domains.medical.model.artifacts import ModelExtra
from verticals.domains.medical.model.networks import MedicalNet, ProbabilityNet, build_network
from verticals.domains.medical.model.ood import OodProfile, layer_statistics
from verticals.domains.medical.model.preprocess import preprocess_batch
from verticals.domains.medical.model.tasks import TaskSpec, get_task

PREDICT_CHUNK = 256
RANGE_TOLERANCE = 1e-3
# the last residual stage: its channel means are the pooled features the final linear layer reads
PENULTIMATE = "net.layer4"


class Classifier:
    """One model version of one task, on CPU.

    ``predict`` takes float32 ``[N, 1, H, W]`` (or ``[N, H, W]``) in [0, 1], any H and W: images
    not at the input size go through the task's one preprocessing chain (``model.preprocess``). It returns the
    positive-class probability ``[N]`` (``spec.positive_label``); ``threshold`` turns it into a
    label. Prediction is thread-safe; Grad-CAM is serialised by a lock.
    """

    registry_version: ModelVersion | None = None  # set when loaded from the registry

    def __init__(
        self,
        extra: ModelExtra,
        weights: Path | bytes,
        version: str,
        card: ModelCard | None = None,
        ood: OodProfile | None = None,
    ) -> None:
        self.spec: TaskSpec = get_task(extra.task)
        self.task = self.spec.name
        self.version = version
        self.threshold = extra.threshold
        self.network = extra.network
        self.input_size = extra.network.input_size
        self.card = card
        self.ood = ood
        self._net: MedicalNet = build_network(extra.network)
        load_weights(self._net, weights)
        self._net.eval()
        self._lock = threading.Lock()
        # the OOD/embedding pass runs on a private copy, made now: its hooks never see a predict
        # or Grad-CAM pass, and no hook or concurrent Grad-CAM state can be copied into it
        self._ood_net: MedicalNet = copy.deepcopy(self._net).eval()
        self._ood_lock = threading.Lock()

    @property
    def labels(self) -> list[str]:
        return list(self.spec.labels)

    def _prepare(self, images: np.ndarray) -> torch.Tensor:
        arr = np.asarray(images)
        if arr.ndim == 3:
            arr = arr[:, None]
        if arr.ndim != 4 or arr.shape[1] != 1:
            raise InvalidInput(f"images must be [N,1,H,W], got shape {tuple(np.shape(images))}")
        if arr.shape[0] == 0:
            raise InvalidInput("no images given")
        if not np.issubdtype(arr.dtype, np.floating):
            raise InvalidInput(f"images must be float in [0, 1], got dtype {arr.dtype}")
        if not np.isfinite(arr).all():
            raise InvalidInput("images contain NaN or infinite values")
        low, high = float(arr.min()), float(arr.max())
        if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
            raise InvalidInput(f"pixel values must be in [0, 1], got [{low:.3g}, {high:.3g}]")
        return torch.from_numpy(preprocess_batch(np.clip(arr, 0, 1), self.input_size))

    @torch.inference_mode()
    def predict(self, images: np.ndarray) -> np.ndarray:
        """Positive-class probability, float32 ``[N]``."""
        x = self._prepare(images)
        out = [torch.sigmoid(self._net(chunk)).reshape(-1) for chunk in x.split(PREDICT_CHUNK)]
        return torch.cat(out).numpy().astype(np.float32)

    def gradcam(self, image: np.ndarray) -> np.ndarray:
        """Grad-CAM of the positive class for ``image`` ``[1, H, W]`` → ``[H, W]`` in [0, 1]."""
        from verticals.core.explain import grad_cam

        arr = np.asarray(image)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3 or arr.shape[0] != 1:
            raise InvalidInput(f"image must be [1,H,W], got shape {tuple(np.shape(image))}")
        x = self._prepare(arr[None])
        with self._lock:
            cam = grad_cam(self._net, x[0], target_layer=self.network.gradcam_layer)
        height, width = arr.shape[-2:]
        up = F.interpolate(
            torch.from_numpy(cam)[None, None],
            size=(height, width),
            mode="bilinear",
            align_corners=False,
        )[0, 0].clamp(0, 1)
        return up.numpy().astype(np.float32)

    def ood_score(self, image: np.ndarray) -> float | None:
        """Distance of ``image`` ``[1, H, W]`` from the training distribution / calibrated cut
        (above 1: out of distribution); None when this version has no profile."""
        if self.ood is None:
            return None
        x = self._prepare(np.asarray(image)[None]).numpy()
        with self._ood_lock:  # the private copy made in __init__
            features = layer_statistics(self._ood_net, x, self.ood.layers)
        return float(self.ood.score(features)[0])

    def inspect(self, images: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """One pass of the OOD copy over ``images`` ``[N, 1, H, W]``: the OOD scores ``[N]``
        (None without a profile) and the penultimate-layer features ``[N, C]`` (the channel
        means of :data:`PENULTIMATE`, i.e. the pooled vector the final layer reads), which
        monitoring summarises. Same scores as :meth:`ood_score`, one forward for both."""
        x = self._prepare(images).numpy()
        layers = tuple(dict.fromkeys((*(self.ood.layers if self.ood else ()), PENULTIMATE)))
        with self._ood_lock:
            features = layer_statistics(self._ood_net, x, layers)
        pooled = features[PENULTIMATE]
        scores = None if self.ood is None else self.ood.score(features)
        return scores, pooled[:, : pooled.shape[1] // 2]  # [means | stds] per channel

    def torch_module(self) -> nn.Module:
        """A fresh eval-mode module: ``[N,1,S,S]`` in [0,1] → ``[N,1]`` positive probability."""
        net = build_network(self.network)
        net.load_state_dict(self._net.state_dict())
        return ProbabilityNet(net).eval()

    def example_input(self, batch: int = 1) -> torch.Tensor:
        """A deterministic ``[batch, 1, S, S]`` float32 input in [0, 1] (for export/tracing)."""
        generator = torch.Generator().manual_seed(0)
        return torch.rand(batch, 1, self.input_size, self.input_size, generator=generator)
