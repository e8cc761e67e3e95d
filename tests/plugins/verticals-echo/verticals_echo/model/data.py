"""Rows as files hold them: a JSON list of ``{"values": [x1, x2, x3], "target": y}`` (training)
or ``{"values": [...], "label": 0|1}`` (evaluation); a row with a target and no label is
labelled ``target > 0``."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, TypeAdapter, model_validator
from verticals.core.errors import InvalidInput

from verticals_echo.schemas import FiniteFloat

SAMPLE = Path(__file__).parent / "sample.json"
N_FEATURES = 3


class Row(BaseModel):
    values: list[FiniteFloat] = Field(min_length=N_FEATURES, max_length=N_FEATURES)
    target: FiniteFloat | None = None
    label: int | None = Field(default=None, ge=0, le=1)

    @model_validator(mode="after")
    def _labelled(self) -> Row:
        if self.label is None and self.target is not None:
            self.label = int(self.target > 0)
        return self


_ROWS = TypeAdapter(list[Row])


def load_rows(path: Path, *, max_rows: int | None = None) -> list[Row]:
    """The rows of ``path``; InvalidInput (naming the file) when it is not a list of rows."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"no data file at {path}", {"path": str(path)})
    try:
        rows = _ROWS.validate_json(path.read_bytes())
    except ValueError as exc:
        raise InvalidInput(
            f"{path} is not a JSON list of rows: {exc}", {"path": str(path)}
        ) from exc
    if not rows:
        raise InvalidInput(f"{path} holds no rows", {"path": str(path)})
    if max_rows is not None and len(rows) > max_rows:
        raise InvalidInput(f"{path} holds {len(rows)} rows, more than {max_rows}")
    return rows


def split(rows: list[Row], val_every: int = 4) -> tuple[list[Row], list[Row]]:
    """(train, validation): every ``val_every``-th row is held out, so the split is the same on
    every run and never depends on a test file."""
    if val_every < 2:
        raise ValueError(f"val_every must be at least 2, got {val_every}")
    val = rows[val_every - 1 :: val_every]
    train = [row for i, row in enumerate(rows) if (i + 1) % val_every]
    return train, val
