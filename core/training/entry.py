"""Worker entry for :func:`verticals.core.training.distributed.launch_function`.

``python -m verticals.core.training.entry --target pkg.mod:fn --kwargs '{...}' --result out.json``
"""

from __future__ import annotations

import argparse
import importlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from verticals.core.training.distributed import destroy_distributed, is_main_process


def _resolve(target: str) -> Callable[..., Any]:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", required=True)
    parser.add_argument("--kwargs", default="{}")
    parser.add_argument("--result", type=Path, required=True)
    ns = parser.parse_args(argv)
    fn = _resolve(ns.target)
    result = fn(**json.loads(ns.kwargs))
    if is_main_process():
        payload = result.model_dump(mode="json") if hasattr(result, "model_dump") else result
        ns.result.write_text(json.dumps(payload, default=str))
    destroy_distributed()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
