"""C-MAPSS parsing: the typed frame, and refusals that name the line and column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from verticals.core.errors import InvalidInput
from verticals.domains.manufacturing.model.cmapss import (
    READING_COLUMNS,
    SENSOR_COLUMNS,
    SETTING_COLUMNS,
    histories,
    read_cmapss,
    read_truth,
)

CMAPSS = Path(__file__).resolve().parents[5] / "shared" / "data" / "cmapss"


def _row(unit: int, cycle: int, value: float = 1.0) -> str:
    return " ".join([str(unit), str(cycle)] + [f"{value:g}"] * 24) + "  "


def _text(*rows: str) -> bytes:
    return ("\n".join(rows) + "\n").encode()


def test_columns() -> None:
    assert len(SETTING_COLUMNS) == 3 and len(SENSOR_COLUMNS) == 21
    assert READING_COLUMNS == SETTING_COLUMNS + SENSOR_COLUMNS
    assert READING_COLUMNS[0] == "op_setting_1" and READING_COLUMNS[-1] == "sensor_21"


def test_parses_rows_with_trailing_spaces() -> None:
    frame = read_cmapss(_text(_row(1, 1), _row(1, 2, 2.5), _row(2, 1)))
    assert list(frame.columns[:2]) == ["unit", "cycle"]
    assert frame["unit"].dtype == np.int64 and frame["sensor_21"].dtype == np.float64
    assert frame.shape == (3, 26)
    assert frame.loc[1, "sensor_5"] == 2.5
    units, hs = histories(frame)
    assert units == [1, 2] and hs[0].shape == (2, 24)


@pytest.mark.parametrize(
    ("bad", "line", "column"),
    [
        ("1 2 3", 2, "-"),
        (_row(1, 2).replace(" 1 1 1 ", " 1 x 1 ", 1), 2, "op_setting_"),
        (_row(1, 2, float("nan")), 2, "op_setting_1"),
        (_row(1, 1), 2, "cycle"),
        (_row(1, 2) + " 7", 2, "-"),
    ],
)
def test_bad_rows_name_line_and_column(bad: str, line: int, column: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        read_cmapss(_text(_row(1, 1), bad, _row(1, 3)))
    assert f"line {line}" in caught.value.message
    assert caught.value.details["line"] == line
    assert caught.value.details["column"].startswith(column)


def test_unit_split_in_two_blocks_is_refused() -> None:
    with pytest.raises(InvalidInput, match="line 3, column unit"):
        read_cmapss(_text(_row(1, 1), _row(2, 1), _row(1, 2)))


def test_size_guard_and_empty() -> None:
    with pytest.raises(InvalidInput, match="over the limit"):
        read_cmapss(_text(_row(1, 1), _row(1, 2)), max_bytes=50)
    with pytest.raises(InvalidInput, match="no rows"):
        read_cmapss(b"\n\n")


def test_read_truth(tmp_path: Path) -> None:
    path = tmp_path / "RUL.txt"
    path.write_text("112 \n98 \n")
    assert read_truth(path).tolist() == [112.0, 98.0]
    path.write_text("112\n-3\n")
    with pytest.raises(InvalidInput, match="line 2"):
        read_truth(path)


@pytest.mark.skipif(not (CMAPSS / "train_FD001.txt").is_file(), reason="C-MAPSS data absent")
def test_reads_fd001() -> None:
    frame = read_cmapss(CMAPSS / "train_FD001.txt")
    assert len(frame) == 20631 and frame["unit"].nunique() == 100
    assert len(read_truth(CMAPSS / "RUL_FD001.txt")) == 100
