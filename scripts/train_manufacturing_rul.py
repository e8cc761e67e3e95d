"""Train the shipped manufacturing RUL model and write its payloads and report.

    nice -n 10 .venv/bin/python scripts/train_manufacturing_rul.py \
        --data ../shared/data/cmapss/train_FD001.txt --out shared_models/manufacturing/rul

Selects the recipe on validation engines, refits it on train + validation engines, calibrates
the conformal interval and the OOD reference on held-out calibration engines, then writes
rul.profile.json, rul.xgb.ubj and/or rul.weights.safetensors (whichever the recipe uses) and
report.json (the RulTrainReport: validation figures). With --truth and --test it also evaluates
the shipped model on the test engines' last cycles (report only; never used to choose).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from verticals.domains.manufacturing.model.rul import PAYLOAD_FILES, RulModel
from verticals.domains.manufacturing.model.rul_evaluation import evaluate_rul
from verticals.domains.manufacturing.model.rul_training import train_rul


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="train_FD00x.txt")
    parser.add_argument("--out", type=Path, required=True, help="folder for the payloads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test", type=Path, help="test_FD00x.txt, for the final figures only")
    parser.add_argument("--truth", type=Path, help="RUL_FD00x.txt, with --test")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)

    model, report = train_rul(args.data, seed=args.seed)
    print("validation:", json.dumps(report.validation), "recipe:", report.recipe)
    args.out.mkdir(parents=True, exist_ok=True)
    for stale in PAYLOAD_FILES.values():
        (args.out / stale).unlink(missing_ok=True)
    payloads = model.to_payloads()
    for kind, data in payloads.items():
        (args.out / PAYLOAD_FILES[kind]).write_bytes(data)
    (args.out / "report.json").write_text(report.model_dump_json(indent=1) + "\n")
    print(f"wrote {sorted(PAYLOAD_FILES[k] for k in payloads)} and report.json to {args.out}")
    if args.test is not None and args.truth is not None:
        shipped = RulModel.from_payloads(
            {k: (args.out / PAYLOAD_FILES[k]).read_bytes() for k in payloads}
        )
        print("test:", json.dumps(evaluate_rul(shipped, args.test, args.truth)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
