"""torch → ONNX with the dynamo exporter: dynamic batch axis, weights inside the file, numerics
checked against torch; plus ONNX Runtime's offline graph optimisation."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel
from verticals.core.errors import IntegrityError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

INPUT_NAME = "input"
OUTPUT_NAME = "output"
DEFAULT_OPSET = 18


class ExportCheck(BaseModel):
    """Numerics of the exported graph against torch on the same inputs."""

    max_abs_diff: float
    tolerance: float
    batch_sizes: list[int]


def export_onnx(
    module: torch.nn.Module,
    example_input: torch.Tensor,
    path: Path,
    *,
    opset: int = DEFAULT_OPSET,
    check_batch_sizes: tuple[int, ...] = (1, 3),
    atol: float = 1e-3,
) -> ExportCheck:
    """Export ``module`` (eval mode) to ``path`` with a symbolic batch axis and check it.

    ``example_input`` is ``[1, ...]`` float32. The check feeds random inputs of each batch size
    (shaped like the example) through torch and ONNX Runtime and refuses the export
    (IntegrityError) when the max abs difference of the first output exceeds ``atol``.
    """
    import torch

    module = module.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    batch = torch.export.Dim("batch", min=1, max=4096)
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module,
            (example_input,),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},),
            opset_version=opset,
            external_data=False,
            optimize=True,
            verbose=False,
        )
    if program is None:  # dynamo=True always returns one; the stub says Optional
        raise RuntimeError(f"torch.onnx.export returned no program for {path.name}")
    program.save(str(path), external_data=False)
    if path.with_name(path.name + ".data").exists():  # pragma: no cover - guarded by the flag
        raise IntegrityError(f"export of {path.name} wrote weights to a side file")
    return check_numerics(module, path, example_input, check_batch_sizes, atol=atol)


def check_numerics(
    module: torch.nn.Module,
    path: Path,
    example_input: torch.Tensor,
    batch_sizes: Sequence[int],
    *,
    atol: float,
) -> ExportCheck:
    import torch
    from verticals.core.serving.runtime import CPU, RuntimeOptions, create_session

    session = create_session(path, RuntimeOptions(providers=[CPU], warmup_runs=0))
    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    for n in batch_sizes:
        x = torch.randn((n, *example_input.shape[1:]), generator=generator, dtype=torch.float32)
        x = x * example_input.std().clamp_min(1e-3) + example_input.mean()
        with torch.no_grad():
            expected = module(x)
        expected = expected[0] if isinstance(expected, (tuple, list)) else expected
        got = session.run(x.numpy())
        worst = max(worst, float(np.max(np.abs(got - expected.numpy()))))
    if not worst <= atol:
        raise IntegrityError(
            f"ONNX export of {path.name} differs from torch by {worst:.2e} (> {atol:.0e})",
            {"max_abs_diff": worst, "tolerance": atol},
        )
    return ExportCheck(max_abs_diff=worst, tolerance=atol, batch_sizes=list(batch_sizes))


def optimize_graph(src: Path, dst: Path, *, level: str = "basic") -> Path:
    """ONNX Runtime's offline graph optimisation (constant folding, Conv+BN fusion, redundant
    node removal). ``basic`` keeps standard ONNX ops, so the result stays portable across
    execution providers (CUDA/TensorRT too); sessions add the hardware-specific fusions at
    load time."""
    import onnxruntime as ort

    levels = {
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    }
    if level not in levels:
        raise ValueError(f"level must be one of {sorted(levels)}, got {level!r}")
    options = ort.SessionOptions()
    options.graph_optimization_level = levels[level]
    options.optimized_model_filepath = str(dst)
    ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])
    return dst
