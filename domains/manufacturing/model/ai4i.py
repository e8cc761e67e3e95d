"""The AI4I 2020 predictive-maintenance data: loading, typed columns and physics features.

One row is one machining run. Inputs (``INPUT_COLUMNS``): product quality ``type`` (L/M/H), air
and process temperature [K], rotational speed [rpm], torque [Nm] and tool wear [min]. The target
``machine_failure`` is 1 when any of the five failure modes (``MODE_COLUMNS``) struck; the modes
are training targets only, never inputs.

The data set is synthetic and its generator is documented (Matzka, AI4I 2020), so the
derived features are the physical quantities its failure rules read, with their margins to the
thresholds (positive = the safe side) and the rules themselves as 0/1 flags.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
from verticals.core.errors import InvalidInput

TYPE: Final = "type"
AIR_TEMPERATURE: Final = "air_temperature_k"
PROCESS_TEMPERATURE: Final = "process_temperature_k"
ROTATIONAL_SPEED: Final = "rotational_speed_rpm"
TORQUE: Final = "torque_nm"
TOOL_WEAR: Final = "tool_wear_min"
INPUT_COLUMNS: Final = (
    TYPE,
    AIR_TEMPERATURE,
    PROCESS_TEMPERATURE,
    ROTATIONAL_SPEED,
    TORQUE,
    TOOL_WEAR,
)
NUMERIC_INPUTS: Final = INPUT_COLUMNS[1:]
TARGET: Final = "machine_failure"
MODE_COLUMNS: Final = ("TWF", "HDF", "PWF", "OSF", "RNF")
MODE_NAMES: Final = {
    "TWF": "tool wear",
    "HDF": "heat dissipation",
    "PWF": "power",
    "OSF": "overstrain",
    "RNF": "random",
}
TYPES: Final = ("L", "M", "H")

# The CSV's headers, as UCI spells them, onto ours.
CSV_COLUMNS: Final = {
    "Type": TYPE,
    "Air temperature [K]": AIR_TEMPERATURE,
    "Process temperature [K]": PROCESS_TEMPERATURE,
    "Rotational speed [rpm]": ROTATIONAL_SPEED,
    "Torque [Nm]": TORQUE,
    "Tool wear [min]": TOOL_WEAR,
    "Machine failure": TARGET,
    **{mode: mode for mode in MODE_COLUMNS},
}

# The generator's failure rules (Matzka 2020), read by the features and the reason sentences.
HDF_TEMP_DIFF_K: Final = 8.6  # heat dissipation: process - air below this ...
HDF_SPEED_RPM: Final = 1380.0  # ... and speed below this
PWF_LOW_W: Final = 3500.0  # power failure below ...
PWF_HIGH_W: Final = 9000.0  # ... or above
OSF_LIMIT_MINNM: Final = {"L": 11_000.0, "M": 12_000.0, "H": 13_000.0}  # tool wear x torque
TWF_WEAR_MIN: Final = (200.0, 240.0)  # tools are replaced (or fail) somewhere in this window
RNF_RATE: Final = 0.001  # random failures, whatever the conditions

DERIVED_COLUMNS: Final = (
    "type_code",  # L=0, M=1, H=2 (the quality order)
    "power_w",  # torque x speed x 2pi/60
    "temp_diff_k",  # process - air
    "strain_minnm",  # tool wear x torque
    "hdf_temp_margin_k",  # temp_diff - 8.6
    "hdf_speed_margin_rpm",  # speed - 1380
    "pwf_low_margin_w",  # power - 3500
    "pwf_high_margin_w",  # 9000 - power
    "osf_margin_minnm",  # type's limit - strain
    "twf_margin_min",  # 200 - tool wear
    "hdf_rule",  # 1 where the HDF rule fires
    "pwf_rule",
    "osf_rule",
    "twf_window",  # 1 where tool wear is in 200-240 min
)
FEATURE_COLUMNS: Final = (*NUMERIC_INPUTS, *DERIVED_COLUMNS)


def _fail(message: str, column: str, row: int | None = None, value: object = None) -> InvalidInput:
    details: dict[str, object] = {"column": column}
    if row is not None:
        details["row"] = row
        details["value"] = repr(value)
    return InvalidInput(message, details)


def validate_inputs(
    frame: pd.DataFrame, *, first_row: int = 1, shown: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Typed copy of ``frame``'s ``INPUT_COLUMNS`` (``type`` as str, the rest float64).

    Raises ``InvalidInput`` naming the column (as ``shown`` spells it, e.g. the CSV header) and
    the 1-based data row, counted from ``first_row``, when a column is missing, a type is not
    L/M/H or a number is missing, not a number or not finite.
    """
    name = dict(shown or {})
    missing = [c for c in INPUT_COLUMNS if c not in frame.columns]
    if missing:
        raise _fail(f"missing input column(s): {', '.join(missing)}", missing[0])
    out = pd.DataFrame(index=frame.index)
    types = frame[TYPE].astype("string").str.strip()
    bad = ~types.isin(TYPES).fillna(False).to_numpy(dtype=bool)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        column = name.get(TYPE, TYPE)
        raise _fail(
            f"column {column!r}, row {first_row + i}: product type must be L, M or H, "
            f"got {frame[TYPE].iloc[i]!r}",
            column,
            first_row + i,
            frame[TYPE].iloc[i],
        )
    out[TYPE] = types.astype(str).to_numpy()
    for column in NUMERIC_INPUTS:
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise _fail(
                f"column {name.get(column, column)!r}, row {first_row + i}: expected a finite "
                f"number, got {frame[column].iloc[i]!r}",
                name.get(column, column),
                first_row + i,
                frame[column].iloc[i],
            )
        out[column] = values
    return out


def _labels(frame: pd.DataFrame, column: str) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isin(values, (0.0, 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _fail(
            f"column {column!r}, row {i + 1}: labels are 0 or 1, got {frame[column].iloc[i]!r}",
            column,
            i + 1,
            frame[column].iloc[i],
        )
    return values.astype(np.int8)


def load_ai4i(csv: Path | str) -> pd.DataFrame:
    """The CSV as a typed frame: ``INPUT_COLUMNS``, ``TARGET`` and ``MODE_COLUMNS`` (int8).

    UDI and Product ID are dropped (identifiers, never inputs). Rows are numbered from 1 in
    errors, the header not counted.
    """
    path = Path(csv)
    if not path.is_file():
        raise InvalidInput(f"no such data file: {path}", {"path": str(path)})
    try:
        raw = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"{path.name} is not a readable CSV: {exc}", {"path": str(path)}
        ) from exc
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in CSV_COLUMNS if c not in raw.columns]
    if missing:
        raise _fail(f"{path.name} lacks column(s): {', '.join(missing)}", missing[0])
    if raw.empty:
        raise InvalidInput(f"{path.name} has no data rows", {"path": str(path)})
    shown = {ours: theirs for theirs, ours in CSV_COLUMNS.items()}
    frame = validate_inputs(raw.rename(columns=CSV_COLUMNS), shown=shown)
    for column in (TARGET, *MODE_COLUMNS):
        frame[column] = _labels(raw, shown[column])
    return frame.reset_index(drop=True)


def osf_limit(types: pd.Series | np.ndarray) -> np.ndarray:
    """The overstrain limit [min*Nm] of each product type."""
    return pd.Series(np.asarray(types)).map(OSF_LIMIT_MINNM).to_numpy(dtype=np.float64)


def derived_features(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (with ``INPUT_COLUMNS``) plus ``DERIVED_COLUMNS``; a new frame, float64.

    Units: power in W, temperatures in K, strain in min*Nm, margins in the unit of their
    quantity, positive on the safe side of the rule's threshold.
    """
    out = frame.copy()
    speed = out[ROTATIONAL_SPEED].to_numpy(dtype=np.float64)
    torque = out[TORQUE].to_numpy(dtype=np.float64)
    wear = out[TOOL_WEAR].to_numpy(dtype=np.float64)
    power = torque * speed * 2.0 * np.pi / 60.0
    temp_diff = out[PROCESS_TEMPERATURE].to_numpy(dtype=np.float64) - out[AIR_TEMPERATURE].to_numpy(
        dtype=np.float64
    )
    strain = wear * torque
    limit = osf_limit(out[TYPE])
    out["type_code"] = out[TYPE].map({t: float(i) for i, t in enumerate(TYPES)}).astype(float)
    out["power_w"] = power
    out["temp_diff_k"] = temp_diff
    out["strain_minnm"] = strain
    out["hdf_temp_margin_k"] = temp_diff - HDF_TEMP_DIFF_K
    out["hdf_speed_margin_rpm"] = speed - HDF_SPEED_RPM
    out["pwf_low_margin_w"] = power - PWF_LOW_W
    out["pwf_high_margin_w"] = PWF_HIGH_W - power
    out["osf_margin_minnm"] = limit - strain
    out["twf_margin_min"] = TWF_WEAR_MIN[0] - wear
    out["hdf_rule"] = ((temp_diff < HDF_TEMP_DIFF_K) & (speed < HDF_SPEED_RPM)).astype(float)
    out["pwf_rule"] = ((power < PWF_LOW_W) | (power > PWF_HIGH_W)).astype(float)
    out["osf_rule"] = (strain > limit).astype(float)
    out["twf_window"] = ((wear >= TWF_WEAR_MIN[0]) & (wear <= TWF_WEAR_MIN[1])).astype(float)
    return out


def feature_matrix(
    frame: pd.DataFrame, names: tuple[str, ...] | list[str] = FEATURE_COLUMNS
) -> np.ndarray:
    """Rows of ``names`` (float32, (rows, len(names))) from a frame of inputs."""
    return derived_features(frame)[list(names)].to_numpy(dtype=np.float32)
