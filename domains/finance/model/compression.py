"""What ``verticals compress finance/<model>`` needs: the production booster and feature rows.

The native booster is compared with its ONNX conversion (the core's tree path); the metric is
average precision on ``--data`` (raw transactions, features computed over the whole file in
time order), by default on the shipped demo transactions.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from verticals.core.compression.trees import TreeCompressionTarget
from verticals.domains.finance.settings import MODEL_NAME

if TYPE_CHECKING:
    import numpy as np


def finance_compression_target(
    model_name: str, data_file: Path | None, split: str, demo_file: Path
) -> TreeCompressionTarget | None:
    from sklearn.metrics import average_precision_score
    from verticals.domains.finance.model.data import LABEL, frame_features, load_transactions
    from verticals.domains.finance.model.production import load_production_model

    if model_name != MODEL_NAME:
        return None
    model = load_production_model()
    frame = load_transactions(Path(data_file or demo_file))
    if LABEL not in frame.columns:
        from verticals.core.errors import InvalidInput

        raise InvalidInput(f"compression needs the {LABEL} column to measure the metric")
    features = frame_features(frame, model.feature_config)
    rows = model.booster_rows(features)
    labels = frame[LABEL].to_numpy()

    def metric(predict: Callable[[np.ndarray], np.ndarray]) -> tuple[float, str]:
        return float(average_precision_score(labels, predict(rows))), "average_precision"

    return TreeCompressionTarget(
        name=f"finance/{MODEL_NAME}",
        booster=model.booster,
        rows=rows,
        metric=metric,
        version=model.version,
    )
