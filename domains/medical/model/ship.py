"""Train a task on the full shared data and write it into ``shared_models/medical/``.

``python -m verticals.domains.medical.model.ship --task pneumonia --seed 0``
(the exact command is stored in the shipped model card).
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from verticals.core.registry import file_sha256
from verticals.domains.medical.model.artifacts import (
    ModelExtra,
    ShippedModel,
    shipped_dir,
    shipped_model,
)
from verticals.domains.medical.model.cards import build_card
from verticals.domains.medical.model.networks import NetworkSpec
from verticals.domains.medical.model.tasks import TASKS, get_task
from verticals.domains.medical.model.training import RECIPES, train_task


def ship(
    task: str, seed: int, version: str, *, epochs: int | None = None, init_from: str = "auto",
    data: Path | None = None, target_dir: Path | None = None,
) -> ShippedModel:
    spec = get_task(task)
    target_dir = target_dir or shipped_dir()
    run_dir = Path("/tmp") / f"verticals-ship-{task}-{seed}"
    source = RECIPES[spec.name].init_from if init_from == "auto" else init_from
    init_arg: str | None = source
    if source in TASKS:  # the other task's *shipped* weights, never a local production model
        init_arg = str(shipped_model(source)[1])
    report = train_task(
        task, data, 1, seed, epochs=epochs, init_from=init_arg, register=False,
        output_dir=run_dir,
    )
    report = report.model_copy(update={"init_from": source})
    weights = target_dir / f"{task}.safetensors"
    shutil.copyfile(run_dir / "best.safetensors", weights)
    command = f"python -m verticals.domains.medical.model.ship --task {task} --seed {seed}"
    command += f" --version {version}"
    if epochs:
        command += f" --epochs {epochs}"
    if init_from != "auto":
        command += f" --init-from {init_from}"
    metrics = {**report.metrics, "train_seconds": round(report.seconds, 1),
               "epochs_run": report.epochs_run, "best_epoch": report.best_epoch}
    if report.averaged_epochs:
        metrics["averaged_epochs"] = report.averaged_epochs
    weights_note = (f"mean weights of the last {report.averaged_epochs} epochs"
                    if report.averaged_epochs else "best epoch on the carved validation split")
    network = NetworkSpec(input_size=report.input_size)
    card = build_card(
        spec,
        metrics=metrics,
        reproduce_command=command,
        training_data=f"MedMNIST v2 {spec.dataset_file} train split minus a stratified "
        "validation carve-out (fixed split seed)",
        description=f"MONAI ResNet (basic blocks 1-1-1-1, widths 24-48-96-192) at "
        f"{report.input_size}x{report.input_size}, init_from={report.init_from}, seed={seed}, "
        f"{weights_note}, CPU training {report.seconds:.0f}s (1 thread)",
        input_size=report.input_size,
    ).model_copy(update={"version": version})
    shipped = ShippedModel(
        task=task, version=version, weights_file=weights.name, sha256=file_sha256(weights),
        extra=ModelExtra(task=task, network=network,
                         threshold=report.threshold, source="shipped",
                         init_from=report.init_from, seed=seed),
        card=card,
    )
    (target_dir / f"{task}.card.json").write_text(
        json.dumps(shipped.model_dump(mode="json"), indent=2) + "\n"
    )
    return shipped


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--version", default="1.0.0")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--init-from", default="auto")
    parser.add_argument("--data", type=Path)
    ns = parser.parse_args(argv)
    shipped = ship(ns.task, ns.seed, ns.version, epochs=ns.epochs, init_from=ns.init_from,
                   data=ns.data)
    print(json.dumps(shipped.card.metrics))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
