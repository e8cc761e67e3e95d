from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from verticals.core.errors import InvalidInput
from verticals.domains.manufacturing.model import ai4i

DATA = Path(__file__).resolve().parents[5] / "shared/data/ai4i2020/ai4i2020.csv"
HEADER = (
    "UDI,Product ID,Type,Air temperature [K],Process temperature [K],Rotational speed [rpm],"
    "Torque [Nm],Tool wear [min],Machine failure,TWF,HDF,PWF,OSF,RNF"
)
ROWS = [
    "1,M14860,M,298.1,308.6,1551,42.8,0,0,0,0,0,0,0",
    "2,L47181,L,298.2,308.7,1408,46.3,3,0,0,0,0,0,0",
    "3,L47182,L,302.0,309.9,1290,55.0,50,1,0,1,0,0,0",
]


def write(tmp_path: Path, header: str = HEADER, rows: list[str] = ROWS) -> Path:
    path = tmp_path / "ai4i.csv"
    path.write_text("\ufeff" + "\r\n".join([header, *rows]) + "\r\n", encoding="utf-8")
    return path


def test_loads_typed_columns_without_identifiers(tmp_path: Path) -> None:
    frame = ai4i.load_ai4i(write(tmp_path))
    assert list(frame.columns) == [*ai4i.INPUT_COLUMNS, ai4i.TARGET, *ai4i.MODE_COLUMNS]
    assert frame[ai4i.TYPE].tolist() == ["M", "L", "L"]
    assert frame[ai4i.TORQUE].dtype == np.float64
    assert frame[ai4i.TARGET].tolist() == [0, 0, 1]
    assert frame["HDF"].tolist() == [0, 0, 1]


@pytest.mark.skipif(not DATA.is_file(), reason="AI4I 2020 data not present")
def test_loads_the_real_file() -> None:
    frame = ai4i.load_ai4i(DATA)
    assert len(frame) == 10_000
    assert int(frame[ai4i.TARGET].sum()) == 339
    assert frame[ai4i.TYPE].value_counts().to_dict() == {"L": 6000, "M": 2997, "H": 1003}


def test_missing_column_is_named(tmp_path: Path) -> None:
    header = HEADER.replace(",Torque [Nm]", "")
    rows = [",".join(r.split(",")[:6] + r.split(",")[7:]) for r in ROWS]
    with pytest.raises(InvalidInput, match=r"Torque \[Nm\]") as info:
        ai4i.load_ai4i(write(tmp_path, header, rows))
    assert info.value.details["column"] == "Torque [Nm]"


@pytest.mark.parametrize(
    ("field", "value", "column"),
    [
        (6, "abc", "Torque [Nm]"),
        (6, "", "Torque [Nm]"),
        (3, "inf", "Air temperature [K]"),
        (2, "X", "Type"),
        (8, "2", "Machine failure"),
    ],
)
def test_bad_value_names_column_and_row(
    tmp_path: Path, field: int, value: str, column: str
) -> None:
    rows = list(ROWS)
    cells = rows[1].split(",")
    cells[field] = value
    rows[1] = ",".join(cells)
    with pytest.raises(InvalidInput, match="row 2") as info:
        ai4i.load_ai4i(write(tmp_path, rows=rows))
    assert info.value.details["column"] == column
    assert info.value.details["row"] == 2
    assert column in info.value.message


def test_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such data file"):
        ai4i.load_ai4i(tmp_path / "missing.csv")


def test_validate_inputs_names_missing_api_column() -> None:
    frame = pd.DataFrame({c: [1.0] for c in ai4i.NUMERIC_INPUTS})
    with pytest.raises(InvalidInput) as info:
        ai4i.validate_inputs(frame)
    assert info.value.details["column"] == "type"


def test_derived_features_hand_computed(tmp_path: Path) -> None:
    frame = ai4i.derived_features(ai4i.load_ai4i(write(tmp_path)))
    normal, hdf = frame.iloc[0], frame.iloc[2]
    # M, 298.1 K / 308.6 K, 1551 rpm, 42.8 Nm, 0 min
    assert normal["type_code"] == 1.0
    assert normal["power_w"] == pytest.approx(42.8 * 1551 * 2 * np.pi / 60)
    assert normal["power_w"] == pytest.approx(6951.59, abs=0.01)
    assert normal["temp_diff_k"] == pytest.approx(10.5)
    assert normal["strain_minnm"] == 0.0
    assert normal["osf_margin_minnm"] == 12_000.0
    assert normal["twf_margin_min"] == 200.0
    assert normal[["hdf_rule", "pwf_rule", "osf_rule", "twf_window"]].tolist() == [0, 0, 0, 0]
    # L, 302.0 K / 309.9 K, 1290 rpm, 55 Nm, 50 min: past both HDF thresholds
    assert hdf["temp_diff_k"] == pytest.approx(7.9)
    assert hdf["hdf_temp_margin_k"] == pytest.approx(-0.7)
    assert hdf["hdf_speed_margin_rpm"] == -90.0
    assert hdf["power_w"] == pytest.approx(7429.87, abs=0.01)
    assert hdf["pwf_low_margin_w"] == pytest.approx(3929.87, abs=0.01)
    assert hdf["strain_minnm"] == 2750.0
    assert hdf["osf_margin_minnm"] == 11_000.0 - 2750.0
    assert hdf["hdf_rule"] == 1.0
    assert hdf["pwf_rule"] == 0.0


def test_feature_matrix_follows_the_names(tmp_path: Path) -> None:
    frame = ai4i.load_ai4i(write(tmp_path))
    X = ai4i.feature_matrix(frame)
    assert X.shape == (3, len(ai4i.FEATURE_COLUMNS))
    assert X.dtype == np.float32
    assert "type" not in ai4i.FEATURE_COLUMNS
    assert not set(ai4i.MODE_COLUMNS) & set(ai4i.FEATURE_COLUMNS)
