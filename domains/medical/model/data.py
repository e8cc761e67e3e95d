"""MedMNIST-layout data: loading, a stratified validation carve-out, resizing, augmentation.

Images travel as float32 ``[N, 1, H, W]`` in [0, 1]; labels as int64 ``[N]`` in dataset order.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset
from verticals.core.errors import InvalidInput
from verticals.domains.medical.model.tasks import TaskSpec

if TYPE_CHECKING:
    from monai.transforms import Compose

DATA_ENV = "VERTICALS_MEDMNIST_DIR"
SPLIT_SEED = 20260  # fixed: the carved validation split is the same for every training seed


@dataclass(frozen=True)
class ImageSet:
    images: np.ndarray  # float32 [N, 1, H, W] in [0, 1]
    labels: np.ndarray  # int64 [N]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> ImageSet:
        return ImageSet(self.images[index], self.labels[index])


def default_data_file(task: TaskSpec) -> Path:
    """``$VERTICALS_MEDMNIST_DIR/<file>``, else the shared data folder beside the checkout."""
    base = os.environ.get(DATA_ENV)
    folder = Path(base) if base else Path(__file__).resolve().parents[4] / "shared/data/medmnist"
    path = folder / task.dataset_file
    if not path.is_file():
        raise InvalidInput(
            f"training data for {task.name!r} not found at {path}; pass --data or set {DATA_ENV}"
        )
    return path


def as_unit_float(images: np.ndarray) -> np.ndarray:
    """uint8 0..255 or float in [0, 1] → float32 ``[N, 1, H, W]`` in [0, 1]."""
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim == 4 and arr.shape[-1] in (1, 3) and arr.shape[1] not in (1, 3):
        arr = np.moveaxis(arr, -1, 1)  # NHWC → NCHW
    if arr.ndim != 4:
        raise InvalidInput(f"images must be [N,H,W] or [N,1,H,W], got shape {arr.shape}")
    scale = 255.0 if np.issubdtype(arr.dtype, np.integer) else 1.0
    # divided in float64 and then rounded, exactly as the upload decoder scales PNG/JPEG pixels:
    # the same picture is the same tensor whether it came from the .npz or through the API
    out = (arr.astype(np.float64) / scale).astype(np.float32)
    if out.shape[1] == 3:
        weights = np.array([0.299, 0.587, 0.114], np.float32)[None, :, None, None]
        out = (out * weights).sum(axis=1, keepdims=True)
    if out.shape[1] != 1:
        raise InvalidInput(f"images must have 1 (or 3) channels, got {out.shape[1]}")
    return np.ascontiguousarray(out, dtype=np.float32)


def load_npz_split(path: Path, split: str) -> ImageSet:
    """``<split>_images`` / ``<split>_labels`` of a MedMNIST-layout ``.npz``."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            if f"{split}_images" not in keys or f"{split}_labels" not in keys:
                splits = sorted({k.rsplit("_", 1)[0] for k in keys if k.endswith("_images")})
                raise InvalidInput(
                    f"{path.name} has no split {split!r}", {"available_splits": splits}
                )
            images = npz[f"{split}_images"]
            labels = npz[f"{split}_labels"]
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}") from None
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    if len(labels) != len(images):
        raise InvalidInput(f"{split}: {len(images)} images but {len(labels)} labels")
    return ImageSet(as_unit_float(images), labels)


def carve_validation(
    data: ImageSet, fraction: float, seed: int = SPLIT_SEED
) -> tuple[ImageSet, ImageSet]:
    """Stratified split of ``data`` into (train, validation); same result for the same seed."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    val_idx = []
    for label in np.unique(data.labels):
        idx = np.flatnonzero(data.labels == label)
        rng.shuffle(idx)
        val_idx.append(idx[: max(1, round(fraction * len(idx)))])
    val = np.sort(np.concatenate(val_idx))
    train = np.setdiff1d(np.arange(len(data)), val)
    return data.subset(train), data.subset(val)


def train_transforms(seed: int) -> Compose:
    """MONAI augmentation for 1-channel images in [0, 1] (channel-first, one sample).

    Aimed at new patients and other scanners rather than at the validation split:

    - geometry in one resampling (``RandAffine``, border padding): a random resized crop (each
      side zoomed in by up to 1/0.8 or out by 5%, drawn per axis so the aspect ratio varies,
      at an offset of up to 3 px), a rotation of up to ±15° and a slight shear; then a
      left-right flip;
    - intensity, for other exposures and devices: gamma contrast 0.7-1.4, brightness ×(1±0.15),
      offset ±0.06, an occasional mild blur or Gaussian noise; clipped back to [0, 1].
    """
    from monai.transforms import (
        Compose,
        RandAdjustContrast,
        RandAffine,
        RandFlip,
        RandGaussianNoise,
        RandGaussianSmooth,
        RandScaleIntensity,
        RandShiftIntensity,
        ScaleIntensityRange,
    )

    zoom = (-0.2, 0.05)  # MONAI scale: 1 + u; u < 0 samples a smaller window (zoom in)
    chain = Compose(
        [
            RandAffine(
                prob=0.9,
                rotate_range=0.26,
                shear_range=(0.05, 0.05),
                scale_range=(zoom, zoom),
                translate_range=(3, 3),
                padding_mode="border",
            ),
            RandFlip(prob=0.5, spatial_axis=1),
            RandAdjustContrast(prob=0.5, gamma=(0.7, 1.4)),
            RandScaleIntensity(factors=0.15, prob=0.5),
            RandShiftIntensity(offsets=0.06, prob=0.5),
            RandGaussianSmooth(sigma_x=(0.25, 0.8), sigma_y=(0.25, 0.8), prob=0.15),
            RandGaussianNoise(prob=0.2, std=0.03),
            ScaleIntensityRange(a_min=0.0, a_max=1.0, b_min=0.0, b_max=1.0, clip=True),
        ]
    )
    chain.set_random_state(seed=seed)
    return chain


class TensorImageDataset(Dataset):
    """Yields ``(image [1,S,S] float32, target [1] float32 = label == positive_index)``."""

    def __init__(
        self,
        data: ImageSet,
        positive_index: int,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.images = torch.from_numpy(np.ascontiguousarray(data.images))
        self.targets = torch.from_numpy((data.labels == positive_index).astype(np.float32))[:, None]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.images[i]
        if self.transform is not None:
            x = torch.as_tensor(self.transform(x), dtype=torch.float32)
        return x, self.targets[i]
