"""Medical imaging models: tasks, MONAI networks, training, evaluation and inference.

The interface the API and dashboard build on::

    TASKS                          task name → TaskSpec
    ensure_production_models()     register the shipped models where none is in production
    load_classifier(task)          the production Classifier (sha256-checked)
    train_task(task, data, nproc, seed, ...) -> TrainReport
    evaluate_task(task, data_file, split) -> {"roc_auc", "accuracy", "n"}
"""

from verticals.domains.medical.model.evaluation import evaluate_task
from verticals.domains.medical.model.inference import Classifier
from verticals.domains.medical.model.production import (
    ensure_production_models,
    load_classifier,
    shipped_classifier,
)
from verticals.domains.medical.model.tasks import TASKS, TaskSpec, get_task
from verticals.domains.medical.model.training import TrainReport, train_task

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
