#!/usr/bin/env python
"""Transfer-learning study of the medical domain: a task trained from scratch vs fine-tuned from
another task's shipped model (see ``verticals.domains.medical.model.transfer_study``).

    .venv/bin/python scripts/medical_transfer_study.py --task breast --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from verticals.domains.medical.model.transfer_study import METRIC, run_study


def _override(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE, got {text!r}")
    return key, json.loads(value) if value not in ("None", "none") else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="breast")
    parser.add_argument("--source", default="pneumonia")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, help="override the recipe's epochs (both arms)")
    parser.add_argument("--data", type=Path)
    parser.add_argument("--set", dest="overrides", type=_override, action="append", default=[],
                        metavar="FIELD=JSON", help="override a recipe field, e.g. "
                        "--set average_last=null --set patience=15 --set finetune_lr=1e-3")
    parser.add_argument("--out", type=Path, help="write the full result as JSON here")
    ns = parser.parse_args(argv)
    result = run_study(ns.task, ns.source, ns.seeds, epochs=ns.epochs, data=ns.data,
                       recipe=dict(ns.overrides) or None)
    if ns.out:
        ns.out.write_text(json.dumps(result, indent=2) + "\n")
    for arm, s in result["summary"].items():
        print(f"{arm:>28}: {METRIC} {s['mean']:.4f} ± {s['std']:.4f} "
              f"(min {s['min']:.4f}, max {s['max']:.4f}, n={len(result['seeds'])})")
    if result["gain"] is not None:
        print(f"{'gain (finetune - scratch)':>28}: {result['gain']:+.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
