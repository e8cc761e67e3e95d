"""Transfer-learning study: a task trained from scratch vs fine-tuned from another task's model.

``scripts/medical_transfer_study.py --task breast --seeds 0 1 2`` runs it from a checkout.

Both arms run the task's recipe (same epochs, early stopping and time budget; each arm its own
recipe learning rate: ``lr`` from scratch, ``finetune_lr`` when fine-tuning) and differ only in
the initial weights. The source weights are the *shipped* model of ``--source`` (read from
``shared_models/medical``, sha256-checked), so the study never depends on a database. Selection
uses the carved validation split only; the figure reported is the ROC AUC on the official val
split, which no run sees before it is scored. Nothing is registered.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from verticals.domains.medical.model.artifacts import shipped_model
from verticals.domains.medical.model.training import RECIPES, train_task

METRIC = "official_val_roc_auc"


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def run_study(
    task: str = "breast",
    source: str = "pneumonia",
    seeds: Sequence[int] = (0, 1, 2),
    *,
    epochs: int | None = None,
    data: Path | None = None,
    recipe: dict[str, Any] | None = None,
    log: Callable[[str], object] = print,
) -> dict[str, Any]:
    """Train every seed in both arms; return per-run rows and mean ± std (sample std) per arm.

    ``recipe`` overrides fields of the task's :class:`~.training.Recipe` for this study only.
    """
    if recipe:
        original = RECIPES[task]
        RECIPES[task] = original.model_copy(update=recipe)
        try:
            result = run_study(task, source, seeds, epochs=epochs, data=data, log=log)
        finally:
            RECIPES[task] = original
        return {**result, "recipe_overrides": recipe}
    _, source_weights = shipped_model(source)
    arms = {"scratch": None, f"finetune_from_{source}": str(source_weights)}
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        for arm, init in arms.items():
            report = train_task(task, data, 1, seed, epochs=epochs, init_from=init,
                                register=False, progress=False)
            row = {
                "arm": arm, "seed": seed, METRIC: report.metrics.get(METRIC),
                "official_val_accuracy": report.metrics.get("official_val_accuracy"),
                "val_roc_auc": report.metrics["val_roc_auc"], "epochs_run": report.epochs_run,
                "best_epoch": report.best_epoch, "seconds": round(report.seconds, 1),
            }
            rows.append(row)
            log(json.dumps(row))
    summary = {}
    for arm in arms:
        values = [r[METRIC] for r in rows if r["arm"] == arm and r[METRIC] is not None]
        if values:
            summary[arm] = _summary(values)
    names = list(arms)
    gain = None
    if all(name in summary for name in names):
        gain = summary[names[1]]["mean"] - summary[names[0]]["mean"]
    return {"task": task, "source": source, "seeds": list(seeds), "metric": METRIC,
            "recipe": RECIPES[task].model_dump(), "rows": rows, "summary": summary, "gain": gain}
