"""NASA C-MAPSS turbofan files: parse the whitespace-separated text into a typed frame.

A train/test file has 26 fields a line: unit, cycle, three operating settings, 21 sensors.
Bad rows are refused with the line (1-based) and the column that is wrong.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from verticals.core.errors import InvalidInput

ID_COLUMNS: tuple[str, ...] = ("unit", "cycle")
SETTING_COLUMNS: tuple[str, ...] = tuple(f"op_setting_{i}" for i in range(1, 4))
SENSOR_COLUMNS: tuple[str, ...] = tuple(f"sensor_{i}" for i in range(1, 22))
READING_COLUMNS: tuple[str, ...] = SETTING_COLUMNS + SENSOR_COLUMNS
ALL_COLUMNS: tuple[str, ...] = ID_COLUMNS + READING_COLUMNS
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


def _raw_bytes(source: Path | str | bytes, max_bytes: int) -> bytes:
    if isinstance(source, bytes | bytearray):
        data = bytes(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise InvalidInput(f"C-MAPSS file {path} does not exist", {"field": "data"})
        size = path.stat().st_size
        if size > max_bytes:
            raise InvalidInput(
                f"C-MAPSS file is {size} bytes, over the limit of {max_bytes}",
                {"field": "data", "bytes": size, "max_bytes": max_bytes},
            )
        data = path.read_bytes()
    if len(data) > max_bytes:
        raise InvalidInput(
            f"C-MAPSS data is {len(data)} bytes, over the limit of {max_bytes}",
            {"field": "data", "bytes": len(data), "max_bytes": max_bytes},
        )
    return data


def _bad(line: int, column: str, message: str) -> InvalidInput:
    return InvalidInput(
        f"line {line}, column {column}: {message}", {"line": line, "column": column}
    )


def read_cmapss(source: Path | str | bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> pd.DataFrame:
    """Parse a train or test file into ``unit, cycle`` (int64) and the 24 readings (float64).

    Raises :class:`InvalidInput` naming the line and column of the first bad row: a wrong
    number of fields, a non-numeric or non-finite value, a non-integer unit/cycle, or cycles
    that do not increase within a unit.
    """
    data = _raw_bytes(source, max_bytes)
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"C-MAPSS data is not plain text: {exc}", {"field": "data"}) from exc
    rows: list[list[float]] = []
    lines: list[int] = []
    width = len(ALL_COLUMNS)
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != width:
            raise _bad(number, "-", f"expected {width} fields, found {len(fields)}")
        values: list[float] = []
        for name, field in zip(ALL_COLUMNS, fields, strict=True):
            try:
                value = float(field)
            except ValueError:
                raise _bad(number, name, f"{field[:20]!r} is not a number") from None
            if not math.isfinite(value):
                raise _bad(number, name, f"{field[:20]!r} is not finite")
            values.append(value)
        for name, value in zip(ID_COLUMNS, values[:2], strict=True):
            if value != int(value) or value < 1:
                raise _bad(number, name, f"{value!r} is not a positive integer")
        rows.append(values)
        lines.append(number)
    if not rows:
        raise InvalidInput("C-MAPSS data holds no rows", {"field": "data"})
    array = np.asarray(rows, dtype=np.float64)
    units, cycles = array[:, 0], array[:, 1]
    same_unit = units[1:] == units[:-1]
    not_increasing = same_unit & (cycles[1:] <= cycles[:-1])
    if not_increasing.any():
        index = int(np.argmax(not_increasing)) + 1
        raise _bad(lines[index], "cycle", "cycles must increase within a unit")
    # a unit must not reappear after another one started (its rows must be contiguous)
    starts = np.r_[True, ~same_unit]
    seen: set[int] = set()
    for index in np.flatnonzero(starts):
        unit = int(units[index])
        if unit in seen:
            raise _bad(lines[index], "unit", f"unit {unit} appears in two separate blocks")
        seen.add(unit)
    frame = pd.DataFrame(array, columns=list(ALL_COLUMNS))
    frame["unit"] = frame["unit"].astype(np.int64)
    frame["cycle"] = frame["cycle"].astype(np.int64)
    return frame


def read_truth(source: Path | str | bytes, *, max_bytes: int = 1024 * 1024) -> np.ndarray:
    """The RUL file: one non-negative number a line (line i = unit i), as float64."""
    text = _raw_bytes(source, max_bytes).decode("ascii", errors="replace")
    values: list[float] = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 1:
            raise _bad(number, "rul", f"expected 1 field, found {len(fields)}")
        try:
            value = float(fields[0])
        except ValueError:
            raise _bad(number, "rul", f"{fields[0][:20]!r} is not a number") from None
        if not math.isfinite(value) or value < 0:
            raise _bad(number, "rul", f"{value!r} is not a non-negative finite number")
        values.append(value)
    if not values:
        raise InvalidInput("RUL file holds no values", {"field": "truth"})
    return np.asarray(values, dtype=np.float64)


def histories(frame: pd.DataFrame) -> tuple[list[int], list[np.ndarray]]:
    """Units (in file order) and each unit's (n_cycles, 24) readings in READING_COLUMNS order."""
    units: list[int] = []
    out: list[np.ndarray] = []
    for unit, group in frame.groupby("unit", sort=False):
        units.append(int(unit))
        out.append(group[list(READING_COLUMNS)].to_numpy(dtype=np.float64))
    return units, out
