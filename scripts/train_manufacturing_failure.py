"""Train the shipped manufacturing failure model and write its payloads and report.

    .venv/bin/python scripts/train_manufacturing_failure.py \
        --data ../shared/data/ai4i2020/ai4i2020.csv --out shared_models/manufacturing/failure

Writes failure.xgb.ubj, failure.modes.json, failure.profile.json (the model, trained on the
whole CSV) and report.json (the train report and the 5-fold cross-validation figures).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from verticals.domains.manufacturing.model.failure import PAYLOAD_FILES
from verticals.domains.manufacturing.model.failure_training import (
    cross_validate_failure,
    train_failure,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="ai4i2020.csv")
    parser.add_argument("--out", type=Path, required=True, help="folder for the payloads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds")
    args = parser.parse_args(argv)

    cv = cross_validate_failure(args.data, folds=args.folds, seed=args.seed)
    print("cross-validation:", json.dumps(cv))
    model, report = train_failure(args.data, seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    for kind, data in model.to_payloads().items():
        (args.out / PAYLOAD_FILES[kind]).write_bytes(data)
    # Without the wall-clock seconds, so that a rerun writes the same bytes.
    train = report.model_dump(mode="json", exclude={"seconds"})
    body = {"train": train, "cv": {"folds": args.folds, **cv}}
    (args.out / "report.json").write_text(json.dumps(body, indent=2) + "\n")
    print(
        f"trained in {report.seconds} s, threshold {report.threshold}; wrote {sorted(PAYLOAD_FILES.values())} to {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
