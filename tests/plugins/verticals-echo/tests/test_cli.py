"""The domain's commands as ``verticals`` mounts them."""

from __future__ import annotations

import json

from typer.testing import CliRunner
from verticals.apps.cli.main import build_cli
from verticals.core.plugins import PluginRegistry

from verticals_echo import NAME


def _run(domain, *args: str) -> str:
    result = CliRunner().invoke(build_cli(PluginRegistry(domains={NAME: domain})), list(args))
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


def test_train_then_evaluate_then_score(domain, tmp_path):
    trained = json.loads(_run(domain, "train", NAME, "--version", "2", "--json"))
    assert trained["promoted"] and trained["version"] == "2"
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps([{"values": [1, 0, 0], "label": 1}]))
    assert json.loads(_run(domain, "evaluate", NAME, "--data", str(rows), "--json")) == {
        "accuracy": 1.0,
        "n": 1.0,
    }
    assert float(_run(domain, "score", NAME, "--data", str(rows))) == 0.6
