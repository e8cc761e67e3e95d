"""The classifier network: a small MONAI ResNet for 1-channel images, with input scaling inside.

``MedicalNet`` maps ``[N, 1, S, S]`` float in [0, 1] to one logit per image (``[N, 1]``) for
the task's positive class. ``ProbabilityNet`` adds the sigmoid: the module handed to compression.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn


class NetworkSpec(BaseModel):
    """Constructor arguments of the network, stored with every model version."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    arch: Literal["monai.ResNet"] = "monai.ResNet"
    block: Literal["basic", "bottleneck"] = "basic"
    layers: tuple[int, int, int, int] = (1, 1, 1, 1)
    block_inplanes: tuple[int, int, int, int] = (24, 48, 96, 192)
    input_size: int = Field(28, ge=16)
    # Grad-CAM target. layer3 (7×7 at 28×28) gives concentrated maps for both shipped models;
    # the pneumonia card uses layer2 (14×14), measured sharper there, while layer2 is diffuse
    # for breast. A new model keeps its card's value: tests/domains/medical/test_overlay.py
    # checks the maps on the demo studies stay readable.
    gradcam_layer: str = "net.layer3"


class MedicalNet(nn.Module):
    def __init__(self, spec: NetworkSpec) -> None:
        super().__init__()
        from monai.networks.nets import ResNet

        self.spec = spec
        self.net = ResNet(
            block=spec.block,
            layers=list(spec.layers),
            block_inplanes=list(spec.block_inplanes),
            spatial_dims=2,
            n_input_channels=1,
            conv1_t_size=3,
            conv1_t_stride=1,
            no_max_pool=True,
            num_classes=1,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - 0.5) / 0.5)

    def reset_head(self) -> None:
        """Re-initialise the final linear layer (before fine-tuning on another task)."""
        self.net.fc.reset_parameters()


class ProbabilityNet(nn.Module):
    """``[N, 1, S, S]`` in [0, 1] → ``[N, 1]`` positive-class probability."""

    def __init__(self, logits: MedicalNet) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))


def build_network(spec: NetworkSpec | None = None) -> MedicalNet:
    return MedicalNet(spec or NetworkSpec())

