"""Pruning that needs no knowledge of the architecture.

Structured (channel) pruning removes whole channels and so really shrinks the model: it finds,
with ``torch.fx``, every *prunable chain* — a Conv/Linear whose output reaches exactly one other
Conv/Linear through only BatchNorm and element-wise activations (DenseNet bottlenecks, ResNet
block interiors, MLP hidden layers) — and keeps the most important channels of each chain
(L2 norm of the producer's filter times the BatchNorm scale). Channels that feed a concat, an
addition or the output are never touched, so the graph stays valid.

Unstructured pruning zeroes the smallest weights globally; it shrinks nothing in a dense ONNX
file (only its compressed size), so it is reported with that caveat.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, TypeAlias, cast

if TYPE_CHECKING:
    import torch
    from torch import fx, nn

    _Weighted: TypeAlias = nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.Linear
    _Norm: TypeAlias = nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d

log = logging.getLogger(__name__)


@dataclass
class Chain:
    producer: str  # module path of the Conv/Linear whose output channels are pruned
    norms: list[str]  # BatchNorm modules in between (pruned alongside)
    consumer: str  # module path of the Conv/Linear whose input channels are pruned
    channels: int


def _torch() -> ModuleType:
    import torch

    return torch


def _is_elementwise(node: fx.Node, modules: Mapping[str, nn.Module]) -> bool:
    torch = _torch()
    nn, F = torch.nn, torch.nn.functional
    elementwise_modules = (
        nn.ReLU,
        nn.ReLU6,
        nn.SiLU,
        nn.GELU,
        nn.LeakyReLU,
        nn.ELU,
        nn.Hardswish,
        nn.Sigmoid,
        nn.Tanh,
        nn.Identity,
        nn.Dropout,
        nn.Dropout2d,
        nn.Dropout3d,
        nn.Mish,
    )
    if node.op == "call_module" and isinstance(node.target, str):
        module = modules[node.target]
        if isinstance(module, nn.PReLU):
            return module.num_parameters == 1
        return isinstance(module, elementwise_modules)
    if node.op == "call_function":
        return node.target in (
            F.relu,
            F.relu6,
            F.silu,
            F.gelu,
            F.leaky_relu,
            F.elu,
            F.hardswish,
            F.dropout,
            torch.relu,
            torch.sigmoid,
            torch.tanh,
        )
    if node.op == "call_method":
        return node.target in ("relu", "sigmoid", "tanh", "relu_")
    return False


def _weighted(module: nn.Module) -> bool:
    torch = _torch()
    nn = torch.nn
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return module.groups == 1 and module.padding_mode == "zeros"
    return isinstance(module, nn.Linear)


def _norm(module: nn.Module) -> bool:
    nn = _torch().nn
    return isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)) and module.affine


def find_chains(module: nn.Module) -> list[Chain]:
    """Every prunable producer → (BatchNorm | activation)* → consumer chain of ``module``."""
    torch = _torch()
    traced = torch.fx.symbolic_trace(module)
    modules = dict(traced.named_modules())
    chains: list[Chain] = []
    for node in traced.graph.nodes:
        if node.op != "call_module" or not _weighted(modules[node.target]):
            continue
        producer = modules[node.target]
        channels = (
            producer.out_channels if hasattr(producer, "out_channels") else producer.out_features
        )
        norms: list[str] = []
        current = node
        consumer = None
        while len(current.users) == 1:
            nxt = next(iter(current.users))
            if nxt.op == "call_module" and _norm(modules[nxt.target]):
                if modules[nxt.target].num_features != channels:
                    break
                norms.append(nxt.target)
            elif _is_elementwise(nxt, modules):
                pass
            elif nxt.op == "call_module" and _weighted(modules[nxt.target]):
                target = modules[nxt.target]
                expected = (
                    target.in_channels if hasattr(target, "in_channels") else target.in_features
                )
                same_kind = isinstance(target, torch.nn.Linear) == isinstance(
                    producer, torch.nn.Linear
                )
                if expected == channels and same_kind and len(nxt.all_input_nodes) == 1:
                    consumer = nxt.target
                break
            else:
                break
            current = nxt
        if consumer is not None and channels > 1:
            chains.append(Chain(node.target, norms, consumer, channels))
    return chains


def _importance(producer: _Weighted, norms: list[_Norm]) -> torch.Tensor:
    weight = producer.weight.detach()
    score = weight.reshape(weight.shape[0], -1).norm(dim=1)
    for norm in norms:
        score = score * norm.weight.detach().abs()
    return score


def _slice_out(layer: _Weighted, keep: torch.Tensor) -> None:
    torch = _torch()
    layer.weight = torch.nn.Parameter(layer.weight.detach()[keep].clone())
    if layer.bias is not None:
        layer.bias = torch.nn.Parameter(layer.bias.detach()[keep].clone())
    if hasattr(layer, "out_channels"):
        layer.out_channels = len(keep)
    else:
        layer.out_features = len(keep)


def _slice_in(layer: _Weighted, keep: torch.Tensor) -> None:
    torch = _torch()
    layer.weight = torch.nn.Parameter(layer.weight.detach()[:, keep].clone())
    if hasattr(layer, "in_channels"):
        layer.in_channels = len(keep)
    else:
        layer.in_features = len(keep)


def _slice_norm(norm: _Norm, keep: torch.Tensor) -> None:
    torch = _torch()
    norm.weight = torch.nn.Parameter(norm.weight.detach()[keep].clone())
    norm.bias = torch.nn.Parameter(norm.bias.detach()[keep].clone())
    if norm.running_mean is not None and norm.running_var is not None:  # both or neither
        norm.running_mean = norm.running_mean[keep].clone()
        norm.running_var = norm.running_var[keep].clone()
    norm.num_features = len(keep)


def prune_channels(
    module: nn.Module, amount: float, *, multiple_of: int = 8
) -> tuple[nn.Module, list[Chain]]:
    """A copy of ``module`` with ``amount`` (0..1) of every prunable chain's channels removed
    (kept counts rounded up to ``multiple_of``, at least one). Returns ``(pruned, chains)``."""
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"amount must be in [0, 1), got {amount}")
    if multiple_of < 1:
        raise ValueError(f"multiple_of must be >= 1, got {multiple_of}")
    torch = _torch()
    pruned = copy.deepcopy(module).eval()
    chains = find_chains(pruned)
    named = dict(pruned.named_modules())
    for chain in chains:
        kept = max(1, round(chain.channels * (1.0 - amount)))
        kept = min(chain.channels, -(-kept // multiple_of) * multiple_of)
        if kept >= chain.channels:
            continue
        # find_chains checked the kinds: _weighted() producer and consumer, _norm() norms.
        producer = cast("_Weighted", named[chain.producer])
        norms = [cast("_Norm", named[n]) for n in chain.norms]
        order = torch.argsort(_importance(producer, norms), descending=True)
        keep = order[:kept].sort().values
        _slice_out(producer, keep)
        for norm in norms:
            _slice_norm(norm, keep)
        _slice_in(cast("_Weighted", named[chain.consumer]), keep)
    return pruned, chains


def prune_unstructured(module: nn.Module, amount: float) -> nn.Module:
    """A copy of ``module`` with the ``amount`` smallest-magnitude Conv/Linear weights (global
    L1) set to zero; the pruning is made permanent (no masks left behind)."""
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"amount must be in [0, 1), got {amount}")
    torch = _torch()
    from torch.nn.utils import prune

    pruned = copy.deepcopy(module).eval()
    params = [
        (m, "weight")
        for m in pruned.modules()
        if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear))
    ]
    if params and amount > 0:
        prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=amount)
        for m, name in params:
            prune.remove(m, name)
    return pruned


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def sparsity(module: nn.Module) -> float:
    """Fraction of exactly-zero parameters."""
    total = parameter_count(module) or 1
    return sum(int((p == 0).sum()) for p in module.parameters()) / total
