"""Sharded batch jobs: which rows a shard owns, and the completeness check of the merge.

A job of N shards runs N processes (a Kubernetes Indexed Job: ``--shard $JOB_COMPLETION_INDEX/N``).
Shard ``i/N`` (0-based, ``0 <= i < N``, the index Kubernetes hands out) owns the rows whose key —
a stable row id such as a transaction id — hashes to ``i`` modulo ``N``. The hash is BLAKE2b of the
key's text, so the assignment depends neither on the file's row order, nor on the process, nor on
``PYTHONHASHSEED``: the same row always lands in the same shard of N.

``merge_shards`` puts the N parts back together in the input's row order and refuses an incomplete
result: a key in two parts (:class:`Conflict`), a key in the wrong part, a key missing or one that
is not in the input (:class:`InvalidInput`). The merged rows then equal the unsharded run's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]  # no stubs installed
from verticals.core.errors import Conflict, InvalidInput, UnsupportedMediaType

TABLE_SUFFIXES = (".csv", ".parquet")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1:
            raise InvalidInput(f"shard count must be >= 1, got {self.count}", {"field": "shard"})
        if not 0 <= self.index < self.count:
            raise InvalidInput(
                f"shard index must be in 0..{self.count - 1}, got {self.index}",
                {"field": "shard"},
            )

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"1/3"`` → ``Shard(1, 3)``: the second of three shards (indices start at 0)."""
    index, sep, count = text.strip().partition("/")
    if not sep or not index.strip().isdigit() or not count.strip().isdigit():
        raise InvalidInput(
            f"shard must read INDEX/COUNT with 0 <= INDEX < COUNT (e.g. 0/3), got {text!r}",
            {"field": "shard"},
        )
    return Shard(int(index), int(count))


def _key_text(key: Any) -> str:
    """The text a key is hashed by: integral numbers as integers (1179521, never 1179521.0),
    so a CSV and a Parquet copy of one file shard alike."""
    if isinstance(key, float | np.floating) and float(key).is_integer():
        return str(int(key))
    if isinstance(key, np.integer):
        return str(int(key))
    return str(key)


def shard_of(key: Any, count: int) -> int:
    """The shard (0..count-1) that owns ``key`` among ``count``."""
    digest = hashlib.blake2b(_key_text(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


def in_shard(key: Any, shard: Shard) -> bool:
    return shard_of(key, shard.count) == shard.index


def shard_mask(keys: Iterable[Any], shard: Shard) -> np.ndarray:
    """Boolean mask (len(keys),): the rows ``shard`` owns."""
    return np.fromiter((in_shard(k, shard) for k in keys), dtype=bool)


def read_table(path: Path) -> pd.DataFrame:
    """A shard part or an input file, by suffix (.csv or .parquet)."""
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise UnsupportedMediaType(f"{path.name}: use .csv or .parquet", {"field": "path"})
    if not path.is_file():
        raise InvalidInput(f"{path} does not exist", {"field": "path"})
    if suffix == ".csv":
        return pd.read_csv(path)  # pandas 3 reads floats back bit-exact (tested)
    return pd.read_parquet(path)


def write_table(frame: pd.DataFrame, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise UnsupportedMediaType(f"{path.name}: use .csv or .parquet", {"field": "out"})
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)


def merge_shards(
    parts: Sequence[pd.DataFrame], *, key: str, expected_keys: Sequence[Any]
) -> pd.DataFrame:
    """The N parts (given in shard order 0..N-1) as one frame in the order of ``expected_keys``
    (the input's ids, in its order). Refuses: a part without ``key``, a key twice (within or
    across parts), a key in a part that does not own it, a missing key, a key not in the input."""
    if not parts:
        raise InvalidInput("no shard parts to merge", {"field": "parts"})
    count = len(parts)
    texts: list[list[str]] = []
    for index, part in enumerate(parts):
        if key not in part.columns:
            raise InvalidInput(f"part {index} has no {key} column", {"field": key, "part": index})
        part_texts = [_key_text(k) for k in part[key]]
        misplaced = [t for t in part_texts if shard_of(t, count) != index]
        if misplaced:
            raise InvalidInput(
                f"part {index} holds {len(misplaced)} rows of other shards of {count} "
                f"(e.g. {key}={misplaced[0]}): give the parts in shard order, all of one run",
                {"part": index, "misplaced": len(misplaced)},
            )
        texts.append(part_texts)
    merged = pd.concat(parts, ignore_index=True)
    merged_texts = pd.Index([t for part_texts in texts for t in part_texts])
    duplicated = merged_texts[merged_texts.duplicated()].unique()
    if len(duplicated):
        raise Conflict(
            f"{len(duplicated)} {key} values appear more than once (e.g. {duplicated[0]})",
            {"duplicates": len(duplicated)},
        )
    expected = pd.Index([_key_text(k) for k in expected_keys])
    if expected.duplicated().any():
        raise InvalidInput(f"the input repeats {key} values: rows cannot be told apart")
    missing = expected.difference(merged_texts)
    extra = merged_texts.difference(expected)
    if len(missing) or len(extra):
        raise InvalidInput(
            f"the parts hold {len(merged_texts)} rows for {len(expected)} input rows: "
            f"{len(missing)} missing, {len(extra)} not in the input",
            {"missing": len(missing), "extra": len(extra)},
        )
    order = pd.Series(np.arange(len(merged)), index=merged_texts)
    return merged.iloc[order.loc[expected].to_numpy()].reset_index(drop=True)
