"""Shard assignment and the merge's completeness checks (core/batch.py)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from verticals.core.batch import (
    Shard,
    in_shard,
    merge_shards,
    parse_shard,
    read_table,
    shard_mask,
    shard_of,
    write_table,
)
from verticals.core.errors import Conflict, InvalidInput, UnsupportedMediaType


def test_parse_shard_reads_index_over_count() -> None:
    assert parse_shard("1/3") == Shard(1, 3)
    assert parse_shard(" 0/1 ") == Shard(0, 1)
    assert str(parse_shard("2/3")) == "2/3"


@pytest.mark.parametrize("text", ["3/3", "-1/3", "1/0", "1", "a/b", "1/3/4", ""])
def test_parse_shard_refuses_what_is_not_a_shard(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_shard(text)


def test_every_key_lands_in_exactly_one_shard_and_shards_are_balanced() -> None:
    keys = range(30_000)
    counts = np.zeros(3, dtype=int)
    for index in range(3):
        mask = shard_mask(keys, Shard(index, 3))
        counts[index] = mask.sum()
    assert counts.sum() == 30_000
    assert all(abs(c - 10_000) < 500 for c in counts)
    for key in range(100):
        assert sum(in_shard(key, Shard(i, 3)) for i in range(3)) == 1


def test_assignment_is_order_independent_and_type_stable() -> None:
    keys = list(range(1000))
    forward = dict(zip(keys, shard_mask(keys, Shard(0, 4)), strict=True))
    backward = dict(zip(keys[::-1], shard_mask(keys[::-1], Shard(0, 4)), strict=True))
    assert forward == backward
    assert shard_of(1179521, 5) == shard_of(np.int64(1179521), 5) == shard_of(1179521.0, 5)
    assert shard_of(1179521, 5) == shard_of("1179521", 5)


def test_assignment_does_not_depend_on_the_process_hash_seed() -> None:
    code = "from verticals.core.batch import shard_of; print([shard_of(k, 7) for k in range(50)])"
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(runs) == 1
    assert runs.pop().strip() == str([shard_of(k, 7) for k in range(50)])


def _parts(frame: pd.DataFrame, count: int) -> list[pd.DataFrame]:
    return [frame[shard_mask(frame["id"], Shard(i, count))] for i in range(count)]


def test_merge_restores_the_input_order() -> None:
    frame = pd.DataFrame({"id": [9, 4, 7, 1, 12, 30, 5], "value": np.arange(7) / 3})
    merged = merge_shards(_parts(frame, 3), key="id", expected_keys=frame["id"].tolist())
    pd.testing.assert_frame_equal(merged, frame)


def test_merge_refuses_a_row_twice() -> None:
    frame = pd.DataFrame({"id": range(20)})
    parts = _parts(frame, 2)
    parts[0] = pd.concat([parts[0], parts[0].head(1)])
    with pytest.raises(Conflict):
        merge_shards(parts, key="id", expected_keys=frame["id"].tolist())


def test_merge_refuses_a_missing_or_foreign_row() -> None:
    frame = pd.DataFrame({"id": range(20)})
    parts = _parts(frame, 2)
    short = [parts[0].iloc[1:], parts[1]]
    with pytest.raises(InvalidInput, match="1 missing"):
        merge_shards(short, key="id", expected_keys=frame["id"].tolist())
    with pytest.raises(InvalidInput, match="not in the input"):
        merge_shards(parts, key="id", expected_keys=list(range(19)))


def test_merge_refuses_parts_out_of_order_or_of_another_count() -> None:
    frame = pd.DataFrame({"id": range(50)})
    parts = _parts(frame, 3)
    with pytest.raises(InvalidInput, match="shard order"):
        merge_shards(parts[::-1], key="id", expected_keys=frame["id"].tolist())
    with pytest.raises(InvalidInput, match="shard order"):
        merge_shards(parts[:2], key="id", expected_keys=frame["id"].tolist())
    with pytest.raises(InvalidInput):
        merge_shards([], key="id", expected_keys=[])


def test_tables_round_trip_bit_exact(tmp_path) -> None:
    frame = pd.DataFrame({"id": [1, 2, 3], "p": [0.1 + 0.2, 1 / 3, 2.0**-40]})
    for name in ("t.csv", "t.parquet"):
        write_table(frame, tmp_path / name)
        pd.testing.assert_frame_equal(read_table(tmp_path / name), frame, check_exact=True)
    with pytest.raises(UnsupportedMediaType):
        write_table(frame, tmp_path / "t.json")
