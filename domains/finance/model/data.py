"""Raw transaction files (the handbook's format, Parquet or CSV): load, validate, featurise."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from verticals.core.errors import InvalidInput, UnsupportedMediaType
from verticals.domains.finance.model.features import compute_features
from verticals.domains.finance.settings import FeatureConfig

REQUIRED = ("TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT")
LABEL = "TX_FRAUD"
# Simulator output that gives the label away: dropped on load, never a feature.
FORBIDDEN = ("TX_FRAUD_SCENARIO",)


def read_table(source: Path | bytes, *, filename: str | None = None) -> pd.DataFrame:
    """Read Parquet or CSV (by suffix, or by magic bytes for uploads)."""
    if isinstance(source, Path):
        suffix = source.suffix.lower()
        if not source.is_file():
            raise InvalidInput(f"data file {source} does not exist", {"field": "data"})
        if suffix == ".parquet":
            return pd.read_parquet(source)
        if suffix in (".csv", ".gz"):
            return pd.read_csv(source)
        raise UnsupportedMediaType(
            f"unsupported data file {source.name!r}: use .parquet or .csv", {"field": "data"}
        )
    name = (filename or "").lower()
    try:
        if source[:4] == b"PAR1" or name.endswith(".parquet"):
            return pd.read_parquet(io.BytesIO(source))
        return pd.read_csv(io.BytesIO(source))
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InvalidInput(f"could not read the uploaded table: {exc}", {"field": "file"}) from exc


def validate_frame(frame: pd.DataFrame, *, max_amount: float = 1e6) -> pd.DataFrame:
    """Check columns and values, drop the forbidden ones, parse times, keep arrival order.

    Rows are stably sorted by TX_DATETIME (ties keep their file order)."""
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise InvalidInput(f"missing columns {missing}", {"field": missing[0], "missing": missing})
    frame = frame.drop(columns=[c for c in FORBIDDEN if c in frame.columns])
    frame = frame.copy()
    try:
        times = pd.to_datetime(frame["TX_DATETIME"], utc=False, format="mixed")
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"unparseable TX_DATETIME: {exc}", {"field": "TX_DATETIME"}) from exc
    if getattr(times.dt, "tz", None) is not None:
        times = times.dt.tz_convert("UTC").dt.tz_localize(None)
    frame["TX_DATETIME"] = times.astype("datetime64[s]")
    for column in ("TRANSACTION_ID", "CUSTOMER_ID", "TERMINAL_ID"):
        values = pd.to_numeric(frame[column], errors="coerce")
        if values.isna().any() or (values != np.floor(values)).any():
            raise InvalidInput(f"{column} must be integers", {"field": column})
        frame[column] = values.astype(np.int64)
    amounts = pd.to_numeric(frame["TX_AMOUNT"], errors="coerce").astype(np.float64)
    bad = ~np.isfinite(amounts) | (amounts < 0) | (amounts > max_amount)
    if bad.any():
        raise InvalidInput(
            f"TX_AMOUNT must be finite, >= 0 and <= {max_amount:g} ({int(bad.sum())} rows are not)",
            {"field": "TX_AMOUNT", "first_bad_row": int(np.flatnonzero(bad.to_numpy())[0])},
        )
    frame["TX_AMOUNT"] = amounts
    if LABEL in frame.columns:
        labels = pd.to_numeric(frame[LABEL], errors="coerce")
        if labels.isna().any() or not labels.isin([0, 1]).all():
            raise InvalidInput(f"{LABEL} must be 0 or 1", {"field": LABEL})
        frame[LABEL] = labels.astype(np.int64)
    if frame["TRANSACTION_ID"].duplicated().any():
        raise InvalidInput("TRANSACTION_ID values must be unique", {"field": "TRANSACTION_ID"})
    order = np.argsort(frame["TX_DATETIME"].to_numpy(), kind="stable")
    return frame.iloc[order].reset_index(drop=True)


def load_transactions(path: Path, *, max_amount: float = 1e6) -> pd.DataFrame:
    return validate_frame(read_table(Path(path)), max_amount=max_amount)


def timestamps(frame: pd.DataFrame) -> np.ndarray:
    """Epoch seconds (int64) of TX_DATETIME."""
    return frame["TX_DATETIME"].to_numpy().astype("datetime64[s]").astype(np.int64)


def frame_features(
    frame: pd.DataFrame,
    cfg: FeatureConfig,
    *,
    use_labels: bool = True,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Features of every row of a validated frame, in its order (labels feed the delayed
    windows when present and ``use_labels``)."""
    labels = frame[LABEL].to_numpy() if use_labels and LABEL in frame.columns else None
    return compute_features(
        timestamps(frame),
        frame["CUSTOMER_ID"].to_numpy(),
        frame["TERMINAL_ID"].to_numpy(),
        frame["TX_AMOUNT"].to_numpy(),
        labels,
        cfg,
        progress=progress,
    )
