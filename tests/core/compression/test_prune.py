from __future__ import annotations

import torch
from torch import nn
from verticals.core.compression.prune import (
    find_chains,
    parameter_count,
    prune_channels,
    prune_unstructured,
    sparsity,
)


class Residual(nn.Module):
    """conv1→bn→relu→conv2 is prunable; conv2 feeds an addition and must be left alone."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(8, 32, 3, padding=1)
        self.bn = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 8, 3, padding=1)
        self.mlp = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 2))

    def forward(self, x):
        y = x + self.conv2(torch.relu(self.bn(self.conv1(x))))
        return self.mlp(y.mean(dim=(2, 3)))


def test_chains_stop_at_additions_and_concats():
    chains = {(c.producer, c.consumer) for c in find_chains(Residual())}
    assert chains == {("conv1", "conv2"), ("mlp.0", "mlp.2")}


def test_channel_pruning_shrinks_and_keeps_the_graph_valid():
    torch.manual_seed(0)
    model = Residual().eval()
    pruned, chains = prune_channels(model, 0.75)
    assert pruned.conv1.out_channels == 8 and pruned.bn.num_features == 8
    assert pruned.conv2.in_channels == 8 and pruned.mlp[0].out_features == 16
    assert parameter_count(pruned) < 0.4 * parameter_count(model)
    assert pruned(torch.randn(2, 8, 6, 6)).shape == (2, 2)
    assert model.conv1.out_channels == 32  # the original is untouched


def test_channel_pruning_keeps_the_most_important_channels():
    model = Residual().eval()
    with torch.no_grad():
        model.bn.weight.fill_(0.01)
        model.bn.weight[[3, 17]] = 5.0
    pruned, _ = prune_channels(model, 0.9, multiple_of=1)
    assert pruned.bn.num_features == 3
    torch.testing.assert_close(pruned.bn.weight[pruned.bn.weight > 1], torch.tensor([5.0, 5.0]))


def test_unstructured_pruning_zeroes_weights_without_masks():
    model = Residual()
    sparse = prune_unstructured(model, 0.6)
    assert sparsity(sparse) > 0.5
    assert not any(name.endswith("_orig") for name, _ in sparse.named_parameters())


def test_amount_is_validated():
    import pytest

    with pytest.raises(ValueError, match="amount"):
        prune_channels(Residual(), 1.0)
    with pytest.raises(ValueError, match="amount"):
        prune_unstructured(Residual(), -0.1)
