"""Medical imaging models: tasks, MONAI networks, training, evaluation and inference.

The interface the API and dashboard build on::

    TASKS                          task name → TaskSpec
    ensure_production_models()     register the shipped models where none is in production
    load_classifier(task)          the production Classifier (sha256-checked)
    train_task(task, data, nproc, seed, ...) -> TrainReport
    evaluate_task(task, data_file, split) -> {"roc_auc", "accuracy", "n"}
"""

from importlib import import_module
from typing import Any

# Lazy (PEP 562): ``model.preprocess`` and ``model.tasks`` are imported by serving code that must
# not pay for torch, MONAI and the trainer until a model is actually used.
_EXPORTS = {
    "TASKS": "tasks",
    "TaskSpec": "tasks",
    "get_task": "tasks",
    "Classifier": "inference",
    "ensure_production_models": "production",
    "load_classifier": "production",
    "shipped_classifier": "production",
    "evaluate_task": "evaluation",
    "TrainReport": "training",
    "train_task": "training",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)


__all__ = [
    "TASKS",
    "Classifier",
    "TaskSpec",
    "TrainReport",
    "ensure_production_models",
    "evaluate_task",
    "get_task",
    "load_classifier",
    "shipped_classifier",
    "train_task",
]
