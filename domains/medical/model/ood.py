"""How far an image is from what the model was trained on: a feature-space distance, calibrated.

A classifier answers for any picture, including a chest X-ray sent as a breast ultrasound or
random noise. The profile fitted here lets serving say "out of scope" instead of a confident
label. The score is the Mahalanobis distance of Lee et al. (NeurIPS 2018, "A simple unified
framework for detecting out-of-distribution samples"), taken over several depths of the network:

- at each residual stage (``net.layer1`` … ``net.layer4``) an image is summarised by the mean and
  standard deviation of every channel (texture and intensity statistics at that scale);
- class-conditional means and one shared covariance per stage are fitted on the training images
  (Ledoit–Wolf shrinkage from scikit-learn: a stable inverse from a few hundred images);
- an image's distance is the root mean, over stages, of its squared distance to the nearest class
  mean divided by the stage's dimension;
- the cut is the ``quantile`` (default 99 %) of the distances of the validation images: about one
  in-distribution image in a hundred is called out of scope, by construction.

``score`` returns distance / cut: above 1 the image is outside what the model knows.
The profile is saved as safetensors (no pickle) beside the weights and verified by sha256 like
them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

LAYERS: tuple[str, ...] = ("net.layer1", "net.layer2", "net.layer3", "net.layer4")
QUANTILE = 0.99
_CHUNK = 256


@dataclass(frozen=True)
class OodProfile:
    layers: tuple[str, ...]
    means: dict[str, np.ndarray]  # layer → [classes, features]
    precisions: dict[str, np.ndarray]  # layer → [features, features]
    cut: float
    quantile: float

    def distances(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """Raw distances ``[N]`` of images summarised by :func:`layer_statistics`."""
        per_layer = []
        for layer in self.layers:
            x = features[layer]
            squared = np.stack(
                [np.einsum("nd,de,ne->n", x - mean, self.precisions[layer], x - mean)
                 for mean in self.means[layer]]
            ).min(axis=0)
            per_layer.append(np.maximum(squared, 0.0) / x.shape[1])
        return np.sqrt(np.mean(per_layer, axis=0))

    def score(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """Distance / cut, ``[N]``: above 1 means out of distribution."""
        return self.distances(features) / self.cut


def layer_statistics(
    network: nn.Module, images: np.ndarray, layers: tuple[str, ...] = LAYERS
) -> dict[str, np.ndarray]:
    """Per layer, ``[N, 2 * channels]``: each channel's spatial mean and standard deviation for
    ``images`` ``[N, 1, S, S]`` (already at the network's input size)."""
    modules = dict(network.named_modules())
    missing = [name for name in layers if name not in modules]
    if missing:
        raise ValueError(f"the network has no layer {missing}")
    collected: dict[str, list[torch.Tensor]] = {name: [] for name in layers}

    def hook(name: str):  # noqa: ANN202 - torch hook
        def record(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
            flat = output.detach().flatten(2)
            collected[name].append(torch.cat([flat.mean(2), flat.std(2)], dim=1))

        return record

    handles = [modules[name].register_forward_hook(hook(name)) for name in layers]
    was_training = network.training
    network.eval()
    try:
        with torch.inference_mode():
            for chunk in torch.from_numpy(np.ascontiguousarray(images, np.float32)).split(_CHUNK):
                network(chunk)
    finally:
        for handle in handles:
            handle.remove()
        network.train(was_training)
    return {name: torch.cat(parts).double().numpy() for name, parts in collected.items()}


def fit_profile(
    network: nn.Module,
    train_images: np.ndarray,
    train_targets: np.ndarray,
    val_images: np.ndarray,
    *,
    layers: tuple[str, ...] = LAYERS,
    quantile: float = QUANTILE,
) -> OodProfile:
    """Class means and shared precision per layer from the training images (``train_targets``:
    class ids), the cut from the validation images' distances."""
    from sklearn.covariance import LedoitWolf

    targets = np.asarray(train_targets).reshape(-1)
    classes = np.unique(targets)
    features = layer_statistics(network, train_images, layers)
    means, precisions = {}, {}
    for layer in layers:
        x = features[layer]
        class_means = np.stack([x[targets == c].mean(axis=0) for c in classes])
        centred = x - class_means[np.searchsorted(classes, targets)]
        means[layer] = class_means
        precisions[layer] = LedoitWolf(assume_centered=True).fit(centred).precision_
    profile = OodProfile(tuple(layers), means, precisions, cut=1.0, quantile=quantile)
    val_distances = profile.distances(layer_statistics(network, val_images, layers))
    cut = float(np.quantile(val_distances, quantile))
    return OodProfile(tuple(layers), means, precisions, cut=max(cut, 1e-12), quantile=quantile)


def fit_profile_on_file(network: nn.Module, input_size: int, data_file: Path) -> OodProfile:
    """:func:`fit_profile` on a MedMNIST-layout file: class statistics from its ``train`` split,
    the cut from its ``val`` split (the same recipe for shipped and trained versions); a file
    without ``val`` gives the cut to a stratified carve-out of ``train``."""
    from verticals.core.errors import InvalidInput
    from verticals.domains.medical.model.data import carve_validation, load_npz_split
    from verticals.domains.medical.model.preprocess import preprocess_batch

    train = load_npz_split(data_file, "train")
    try:
        val = load_npz_split(data_file, "val")
    except InvalidInput:
        train, val = carve_validation(train, 0.15)
    return fit_profile(
        network,
        preprocess_batch(train.images, input_size),
        train.labels,
        preprocess_batch(val.images, input_size),
    )


def save_profile(profile: OodProfile, path: Path) -> Path:
    from safetensors.numpy import save_file

    tensors = {}
    for layer in profile.layers:
        tensors[f"{layer}.means"] = np.ascontiguousarray(profile.means[layer], np.float32)
        tensors[f"{layer}.precision"] = np.ascontiguousarray(profile.precisions[layer], np.float32)
    metadata = {
        "layers": json.dumps(list(profile.layers)),
        "cut": repr(profile.cut),
        "quantile": repr(profile.quantile),
        "method": "multi-layer class-conditional Mahalanobis (Lee et al. 2018), Ledoit-Wolf",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)
    path.chmod(0o644)
    return path


def load_profile_bytes(data: bytes) -> OodProfile:
    """A profile from the bytes of its file (read through the registry's sha256 check)."""
    import struct

    from safetensors.numpy import load

    header_size = struct.unpack("<Q", data[:8])[0]
    metadata = json.loads(data[8 : 8 + header_size]).get("__metadata__") or {}
    tensors = load(data)
    layers = tuple(json.loads(metadata["layers"]))
    return OodProfile(
        layers,
        {layer: tensors[f"{layer}.means"].astype(np.float64) for layer in layers},
        {layer: tensors[f"{layer}.precision"].astype(np.float64) for layer in layers},
        float(metadata["cut"]),
        float(metadata["quantile"]),
    )
