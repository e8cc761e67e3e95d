from __future__ import annotations

import pytest
from verticals.core.errors import InvalidInput

from verticals_echo.model.data import SAMPLE, load_rows, split


def test_the_bundled_sample_loads_and_splits_the_same_way_every_time():
    rows = load_rows(SAMPLE)
    train, val = split(rows)
    assert len(train) + len(val) == len(rows) and len(val) == len(rows) // 4
    assert split(rows) == (train, val)
    assert all(row.label == int(row.target > 0) for row in rows)


@pytest.mark.parametrize(
    "content", ["{}", "[]", '[{"values": [1, 2]}]', '[{"values": [1, 2, "x"]}]', "not json"]
)
def test_bad_files_are_invalid_input(tmp_path, content):
    path = tmp_path / "rows.json"
    path.write_text(content)
    with pytest.raises(InvalidInput):
        load_rows(path)
