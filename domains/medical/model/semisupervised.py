"""FixMatch-style semi-supervised training for the binary imaging tasks.

Each labelled step also draws ``ratio`` x its batch of unlabelled images:

1. weak augmentation (flip, small shift) → the network's positive probability, no gradient;
2. pseudo-labels for images whose confidence ``max(p, 1 - p)`` is at least ``threshold``,
   **class-balanced**: the kept pseudo-labels follow the labelled class prior (each class at
   most ``share x unlabelled batch``, and at most the prior's ratio to the other class's
   confident images), the most confident first, so the majority class cannot swamp;
3. strong augmentation (the training chain, then a wider affine, stronger intensity jitter
   and cutout) → BCE against the hard pseudo-labels, averaged over the whole unlabelled batch
   and added with weight ``weight`` (λ_u).

It is a loss wrapper rather than a Trainer change: the core Trainer calls ``loss_fn(out, y)``
once per step inside autograd, so the unlabelled term joins the same backward pass. Validation
calls the loss under ``no_grad`` and gets the supervised part only. One process only (the
wrapper calls the bare module, which DDP would not synchronise).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch
from pydantic import BaseModel, Field
from torch import nn

if TYPE_CHECKING:
    from monai.transforms import Compose


class SemiSupervised(BaseModel):
    threshold: float = Field(0.95, gt=0.5, le=1, description="τ: minimum max(p, 1 - p)")
    weight: float = Field(1.0, ge=0, description="λ_u: weight of the unlabelled loss")
    ratio: int = Field(2, ge=1, description="μ: unlabelled images per labelled image")
    balance: bool = Field(True, description="cap each class at its labelled prior x batch")


def select_pseudo_labels(
    probabilities: torch.Tensor, threshold: float, prior: float | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices kept, their 0/1 labels) for positive ``probabilities`` ``[B]``.

    With ``prior`` (the labelled positive share) the kept pseudo-labels follow it: each class
    keeps at most ``ceil(share B)``, and no more than the other class's confident images allow
    at the prior's ratio (the most confident first). A batch where one class has no confident
    image keeps none: the majority alone would only push the prior further. None keeps every
    confident image.
    """
    labels = (probabilities >= 0.5).long()
    confidence = torch.maximum(probabilities, 1 - probabilities)
    ranked = []
    for value in (0, 1):
        idx = torch.nonzero((labels == value) & (confidence >= threshold)).reshape(-1)
        ranked.append(idx[torch.argsort(confidence[idx], descending=True, stable=True)])
    if prior is not None and 0 < prior < 1:
        shares = (1 - prior, prior)
        ranked = [ranked[c][: math.ceil(shares[c] * len(probabilities))] for c in (0, 1)]
        total = min(len(ranked[c]) / shares[c] for c in (0, 1))  # kept at the prior's ratio
        ranked = [ranked[c][: math.ceil(shares[c] * total - 1e-9)] for c in (0, 1)]
    index = torch.sort(torch.cat(ranked)).values
    return index, labels[index]


def weak_transforms(seed: int) -> Compose:
    """Flip and a shift of up to 2 px: the view pseudo-labels are predicted on."""
    from monai.transforms import Compose, RandAffine, RandFlip

    chain = Compose(
        [
            RandFlip(prob=0.5, spatial_axis=1),
            RandAffine(prob=1.0, translate_range=(2, 2), padding_mode="border"),
        ]
    )
    chain.set_random_state(seed=seed)
    return chain


def strong_transforms(seed: int) -> Compose:
    """The training augmentation, then a wider affine, stronger intensity jitter and cutout."""
    from monai.transforms import (
        Compose,
        RandAdjustContrast,
        RandAffine,
        RandCoarseDropout,
        RandGaussianNoise,
        RandHistogramShift,
        ScaleIntensityRange,
    )
    from verticals.domains.medical.model.data import train_transforms

    chain = Compose(
        [
            train_transforms(seed),
            RandAffine(
                prob=0.8,
                rotate_range=0.35,
                shear_range=(0.15, 0.15),
                translate_range=(4, 4),
                padding_mode="border",
            ),
            RandAdjustContrast(prob=0.8, gamma=(0.5, 2.0)),
            RandHistogramShift(num_control_points=6, prob=0.5),
            RandGaussianNoise(prob=0.5, std=0.06),
            RandCoarseDropout(
                holes=1, spatial_size=6, max_spatial_size=12, fill_value=0.0, prob=1.0
            ),
            ScaleIntensityRange(a_min=0.0, a_max=1.0, b_min=0.0, b_max=1.0, clip=True),
        ]
    )
    chain.set_random_state(seed=seed)
    return chain


def _each(transform: Callable, images: torch.Tensor) -> torch.Tensor:
    return torch.stack([torch.as_tensor(transform(x), dtype=torch.float32) for x in images])


class FixMatchLoss(nn.Module):
    """``supervised(out, y)`` plus λ_u x the pseudo-label loss on a fresh unlabelled batch.

    ``model`` is the very module the Trainer updates; ``counts`` the pseudo-labels used per
    class (0/1) so far.
    """

    def __init__(
        self,
        supervised: nn.Module,
        model: nn.Module,
        unlabelled: np.ndarray,
        config: SemiSupervised,
        prior: float,
        seed: int,
    ) -> None:
        super().__init__()
        if len(unlabelled) == 0:
            raise ValueError("no unlabelled images")
        self.supervised = supervised
        self.model = [model]  # a list: not registered as a submodule (no double state_dict)
        self.images = torch.from_numpy(np.ascontiguousarray(unlabelled, dtype=np.float32))
        self.config = config
        self.prior = prior if config.balance else None
        self.generator = torch.Generator().manual_seed(seed)
        self.weak = weak_transforms(seed + 1)
        self.strong = strong_transforms(seed + 2)
        self.counts = [0, 0]
        self.seen = 0

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss = self.supervised(logits, targets)
        model = self.model[0]
        if not (torch.is_grad_enabled() and model.training) or self.config.weight == 0:
            return loss  # validation, or a pass outside training
        return loss + self.config.weight * self.unlabelled_loss(len(logits), logits.device)

    def unlabelled_loss(self, batch: int, device: torch.device) -> torch.Tensor:
        model = self.model[0]
        size = batch * self.config.ratio
        pick = torch.randint(len(self.images), (size,), generator=self.generator)
        raw = self.images[pick]
        with torch.no_grad():
            probs = torch.sigmoid(model(_each(self.weak, raw).to(device)).float()).reshape(-1)
        index, labels = select_pseudo_labels(probs.cpu(), self.config.threshold, self.prior)
        self.seen += size
        if len(index) == 0:
            return torch.zeros((), device=device)
        self.counts[0] += int((labels == 0).sum())
        self.counts[1] += int((labels == 1).sum())
        out = model(_each(self.strong, raw[index]).to(device)).float().reshape(-1)
        per_image = nn.functional.binary_cross_entropy_with_logits(
            out, labels.to(device, out.dtype), reduction="sum"
        )
        return per_image / size  # FixMatch: the mean over the whole unlabelled batch

    def report(self, class_names: list[str], positive_index: int) -> dict[str, int]:
        """Pseudo-labels used per class name, plus the unlabelled draws looked at."""
        negative = next(n for i, n in enumerate(class_names) if i != positive_index)
        return {
            class_names[positive_index]: self.counts[1],
            negative: self.counts[0],
            "unlabelled_seen": self.seen,
        }
