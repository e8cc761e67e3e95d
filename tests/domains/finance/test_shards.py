"""Sharded batch scoring: three parts of the demo file, merged, equal the unsharded run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner
from verticals.shared_models.finance import DEMO_FILE


def _cli():
    from verticals.apps.cli.main import build_cli

    return build_cli()


def _score(*args: str) -> None:
    result = CliRunner().invoke(_cli(), ["score", "finance", "--data", str(DEMO_FILE), *args])
    assert result.exit_code == 0, result.output


def test_three_shards_merged_equal_the_unsharded_run(db, tmp_path: Path) -> None:
    whole = tmp_path / "all.csv"
    _score("--out", str(whole))
    parts = [tmp_path / f"part-{i}.csv" for i in range(3)]
    for index, part in enumerate(parts):
        _score("--shard", f"{index}/3", "--out", str(part))
    sizes = [len(pd.read_csv(part)) for part in parts]
    assert sum(sizes) == len(pd.read_csv(DEMO_FILE))
    assert min(sizes) > 0.25 * sum(sizes)  # the hash spreads rows, not one shard taking all
    ids = [set(pd.read_csv(part)["TRANSACTION_ID"]) for part in parts]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])

    merged = tmp_path / "merged.csv"
    _score(
        "--merge",
        str(parts[0]),
        "--merge",
        str(parts[1]),
        "--merge",
        str(parts[2]),
        "--out",
        str(merged),
    )
    assert merged.read_bytes() == whole.read_bytes()


def test_a_shard_is_the_same_rows_whatever_the_file_order(db, tmp_path: Path) -> None:
    shuffled = tmp_path / "shuffled.csv"
    pd.read_csv(DEMO_FILE).sample(frac=1.0, random_state=3).to_csv(shuffled, index=False)
    for source, out in ((DEMO_FILE, "a.csv"), (shuffled, "b.csv")):
        result = CliRunner().invoke(
            _cli(),
            [
                "score",
                "finance",
                "--data",
                str(source),
                "--shard",
                "1/3",
                "--out",
                str(tmp_path / out),
            ],
        )
        assert result.exit_code == 0, result.output
    a = pd.read_csv(tmp_path / "a.csv").sort_values("TRANSACTION_ID", ignore_index=True)
    b = pd.read_csv(tmp_path / "b.csv").sort_values("TRANSACTION_ID", ignore_index=True)
    pd.testing.assert_frame_equal(a, b)


def test_merge_with_a_part_missing_fails(db, tmp_path: Path) -> None:
    parts = [tmp_path / f"part-{i}.csv" for i in range(3)]
    for index, part in enumerate(parts):
        _score("--shard", f"{index}/3", "--out", str(part))
    result = CliRunner().invoke(
        _cli(),
        [
            "score",
            "finance",
            "--data",
            str(DEMO_FILE),
            "--merge",
            str(parts[0]),
            "--merge",
            str(parts[2]),
            "--out",
            str(tmp_path / "merged.csv"),
        ],
    )
    assert result.exit_code != 0
    assert not (tmp_path / "merged.csv").exists()
