"""What ``verticals compress medical/<task>`` needs: the production model and its data.

The metric is ROC AUC on ``--data``/``--split`` (default: the official MedMNIST val split, which
training and model selection never see); calibration and post-pruning fine-tuning draw from the
train split.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from verticals.core.compression.target import CompressionTarget

CALIBRATION_SAMPLES = 256
FINE_TUNE_BATCH = 64
FINE_TUNE_LR = 1e-3


def medical_compression_target(
    task: str, data_file: Path | None, split: str
) -> CompressionTarget | None:
    import torch
    from verticals.domains.medical.model import TASKS, load_classifier
    from verticals.domains.medical.model.data import default_data_file, load_npz_split
    from verticals.domains.medical.model.evaluation import load_eval_data
    from verticals.domains.medical.model.metrics import roc_auc
    from verticals.domains.medical.model.training import _resized

    if task not in TASKS:
        return None
    classifier = load_classifier(task)
    spec, size = classifier.spec, classifier.input_size
    train = _resized(load_npz_split(default_data_file(spec), "train"), size)
    evaluation = load_eval_data(spec, Path(data_file or default_data_file(spec)), split, size)
    evaluation = _resized(evaluation, size)
    eval_targets = (evaluation.labels == spec.positive_index).astype(np.int64)
    train_targets = (train.labels == spec.positive_index).astype(np.float32)

    def calibration() -> Iterator[np.ndarray]:
        rng = np.random.default_rng(0)
        picked = rng.choice(len(train), min(CALIBRATION_SAMPLES, len(train)), replace=False)
        for start in range(0, len(picked), 32):
            yield train.images[np.sort(picked[start : start + 32])]

    def metric(predict: Callable[[np.ndarray], np.ndarray]) -> tuple[float, str]:
        scores = np.concatenate(
            [
                np.asarray(predict(evaluation.images[i : i + 256])).reshape(-1)
                for i in range(0, len(evaluation), 256)
            ]
        )
        return roc_auc(eval_targets, scores), "roc_auc"

    def fine_tune(module: torch.nn.Module, steps: int) -> None:
        logits = getattr(module, "logits", module)  # ProbabilityNet wraps the logit network
        optimiser = torch.optim.Adam(logits.parameters(), lr=FINE_TUNE_LR)
        rng = np.random.default_rng(1)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        logits.train()
        for _ in range(steps):
            idx = rng.integers(0, len(train), FINE_TUNE_BATCH)
            x = torch.from_numpy(train.images[idx])
            y = torch.from_numpy(train_targets[idx])[:, None]
            loss = loss_fn(logits(x).reshape(-1, 1), y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        module.eval()

    return CompressionTarget(
        name=f"medical/{task}",
        module=classifier.torch_module(),
        example_input=classifier.example_input(1),
        calibration=calibration,
        metric=metric,
        fine_tune=fine_tune,
        version=classifier.version,
        fine_tune_steps=300,
        max_metric_drop=0.01,
    )
