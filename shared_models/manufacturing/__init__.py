"""Shipped manufacturing models (``rul/``, ``failure/``) and the demo's data.

``demo_engines.txt``: units 1-12 of C-MAPSS ``test_FD001.txt`` (NASA, public domain), as plants
would upload them. ``demo_machines.json``: eight AI4I 2020 rows (CC BY 4.0; UDI kept), four of
them failures of each physical mode, as machine tools ``mill-01`` ... ``mill-08``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
DEMO_ENGINES = HERE / "demo_engines.txt"
DEMO_MACHINES = HERE / "demo_machines.json"


def demo_machine_requests() -> list[tuple[str, dict[str, Any]]]:
    """(path, body) pairs: register each demo machine, then score its reading under it."""
    requests: list[tuple[str, dict[str, Any]]] = []
    for machine in json.loads(DEMO_MACHINES.read_text()):
        asset_id = machine["asset_id"]
        requests.append(
            ("/assets", {"asset_id": asset_id, "kind": "machine_tool", "line": "machining"})
        )
        requests.append(
            (
                "/machines:score",
                {**machine["reading"], "asset_id": asset_id, "request_id": f"demo-{asset_id}"},
            )
        )
    return requests
