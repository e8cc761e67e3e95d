"""Retraining the machine-failure model from AI4I data plus recorded maintenance outcomes.

- original data: the AI4I CSV ``verticals train manufacturing --task failure --data`` reads
  (setting ``VERTICALS_MANUFACTURING_RETRAIN_DATA``, and/or ``verticals retrain manufacturing
  --data FILE``);
- labels: core's accepted labels of ``manufacturing``/``failure`` (maintenance outcomes, label
  ``failure``/``ok``, also ``1``/``0``/``true``/``false``). An outcome of a live machine tool
  (``outcomes.py``: subject ``<asset>@<scored at>``, the scored reading in the item's payload)
  becomes a run after the file's; a subject that is a ``UDI`` of the file relabels that run.
  Outcomes with neither a known UDI nor a reading are counted, not used.

The file has no timestamps; ``UDI`` numbers runs in the order they happened, and live outcomes
follow in the order they were labelled. The held-back slice is the newest ``holdout_fraction``
of that order and the challenger trains on the older runs with the shipped recipe
(``failure_training.train_failure``): live outcomes are judged on before they are trained on.
The metric is average precision of the failure probability on the slice. The model is not
compressed (the domain declares no compression target for it).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic_settings import BaseSettings, SettingsConfigDict
from verticals.core.errors import InvalidInput
from verticals.core.labeling.retrain import Challenger, RetrainRecipe, TrainingSet
from verticals.domains.manufacturing import NAME
from verticals.domains.manufacturing.model.shipping import FAILURE

if TYPE_CHECKING:
    from sqlalchemy.orm import Session
    from verticals.core.registry.store import ModelVersion
    from verticals.domains.manufacturing.model.failure import FailureModel

POSITIVE = {"1", "true", "failure", "failed", "yes"}
NEGATIVE = {"0", "false", "ok", "no", "no_failure", "none"}
TARGET_COLUMN = "Machine failure"  # in the CSV


class RetrainSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VERTICALS_MANUFACTURING_RETRAIN_", extra="ignore")

    data: Path | None = None
    holdout_fraction: float = 0.2


@dataclass
class _Data:
    raw: pd.DataFrame  # the CSV as strings, labels applied
    frame: pd.DataFrame  # typed (ai4i.load_ai4i)
    train: np.ndarray
    holdout: np.ndarray
    source: Path


def parse_outcome(label: str) -> int | None:
    text = label.strip().lower()
    if text in POSITIVE:
        return 1
    if text in NEGATIVE:
        return 0
    return None


def _csv_row(reading: dict[str, Any], value: int, udi: int, columns: Any) -> dict[str, str]:
    """A live outcome as a row of the AI4I CSV (modes unknown: 0)."""
    from verticals.domains.manufacturing.model import ai4i

    theirs = {ours: name for name, ours in ai4i.CSV_COLUMNS.items()}
    row = dict.fromkeys(columns, "0")
    row.update({"UDI": str(udi), "Product ID": f"live-{udi}", TARGET_COLUMN: str(value)})
    for column in ai4i.INPUT_COLUMNS:
        row[theirs[column]] = str(reading[column])
    return row


@dataclass
class FailureRetrainRecipe(RetrainRecipe):
    data: Path | None = None
    holdout_fraction: float = 0.2

    domain = NAME
    models = (FAILURE,)
    metric = "average_precision"
    higher_is_better = True

    @classmethod
    def from_settings(cls) -> FailureRetrainRecipe:
        s = RetrainSettings()
        return cls(data=s.data, holdout_fraction=s.holdout_fraction)

    def build(
        self, session: Session, model: str, since: datetime | None, extra_data: Path | None
    ) -> TrainingSet:
        from verticals.core.labeling.store import accepted_labels
        from verticals.domains.manufacturing.model import ai4i

        source = extra_data or self.data
        if source is None:
            raise InvalidInput(
                "manufacturing retraining needs the AI4I CSV: set "
                "VERTICALS_MANUFACTURING_RETRAIN_DATA or pass --data",
                {"field": "data"},
            )
        source = Path(source)
        ai4i.load_ai4i(source)  # validates the file (clear 4xx-style errors)
        raw = pd.read_csv(source, encoding="utf-8-sig", dtype=str, keep_default_na=False)
        raw.columns = [str(c).strip() for c in raw.columns]
        raw = raw.sort_values("UDI", key=lambda s: s.astype(int), kind="stable")
        raw = raw.reset_index(drop=True)
        position = {udi: i for i, udi in enumerate(raw["UDI"].astype(int).astype(str))}
        labels = accepted_labels(session, domain=NAME, model=model, since=since)
        labelled = np.zeros(len(raw), dtype=bool)
        unknown = unreadable = 0
        live: list[dict[str, str]] = []
        next_udi = int(raw["UDI"].astype(int).max()) + 1
        for item in labels:  # oldest first: a newer outcome of the same run wins
            value = parse_outcome(item.label)
            i = position.get(item.subject.strip())
            reading = (item.payload or {}).get("reading")
            if value is None:
                unreadable += 1
            elif i is not None:
                raw.loc[i, TARGET_COLUMN], labelled[i] = str(value), True
            elif isinstance(reading, dict) and all(c in reading for c in ai4i.INPUT_COLUMNS):
                live.append(_csv_row(reading, value, next_udi + len(live), raw.columns))
            else:
                unknown += 1
        if live:
            raw = pd.concat([raw, pd.DataFrame(live, columns=raw.columns)], ignore_index=True)
            labelled = np.concatenate([labelled, np.ones(len(live), dtype=bool)])
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / source.name
            raw.to_csv(path, index=False)
            frame = ai4i.load_ai4i(path)
        n_holdout = max(1, round(len(raw) * self.holdout_fraction))
        holdout = np.zeros(len(raw), dtype=bool)
        holdout[-n_holdout:] = True
        train = ~holdout
        if frame.loc[holdout, ai4i.TARGET].sum() == 0:
            raise InvalidInput("the held-back runs hold no failure to measure on")
        udi = raw["UDI"].astype(int).to_numpy()
        return TrainingSet(
            data=_Data(raw=raw, frame=frame, train=train, holdout=holdout, source=source),
            data_window=f"UDI {udi[train].min()}..{udi[train].max()}",
            holdout_window=f"UDI {udi[holdout].min()}..{udi[holdout].max()}",
            n_train=int(train.sum()),
            n_holdout=int(holdout.sum()),
            labels_used=int((labelled & train).sum()),
            detail={
                "source": source.name,
                "accepted_labels": len(labels),
                "labels_in_holdout": int((labelled & holdout).sum()),
                "live_outcomes": len(live),
                "live_outcomes_in_holdout": int(holdout[len(raw) - len(live) :].sum()),
                "labels_unknown_run": unknown,
                "labels_unreadable": unreadable,
                "failures_train": int(frame.loc[train, ai4i.TARGET].sum()),
                "failures_holdout": int(frame.loc[holdout, ai4i.TARGET].sum()),
            },
        )

    def train_challenger(self, training: TrainingSet, model: str, version: str) -> Challenger:
        from verticals.core.config import get_settings
        from verticals.core.registry.bundle import card_path
        from verticals.domains.manufacturing.model.cards import failure_card
        from verticals.domains.manufacturing.model.failure_training import train_failure
        from verticals.domains.manufacturing.model.shipping import _write

        data: _Data = training.data
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / data.source.name
            data.raw[data.train].to_csv(path, index=False)
            fitted, report = train_failure(path)
        card = failure_card(version, report, data.source.name, None)
        card = card.model_copy(
            update={"reproduce_command": f"verticals retrain {NAME} --model {model}"}
        )
        folder = get_settings().artifacts_dir / NAME / model / version
        bundle = _write(card_path(folder, model), card, fitted.to_payloads())
        return Challenger(
            model=fitted,
            artifact=folder / bundle.files[bundle.primary].file,
            card=card,
            extra=bundle.registry_extra(),
            derived={
                kind: folder / item.file
                for kind, item in bundle.files.items()
                if kind != bundle.primary
            },
        )

    def load(self, version: ModelVersion) -> FailureModel:
        from verticals.core.db import session_scope
        from verticals.core.registry.bundle import load_bundle_payloads
        from verticals.domains.manufacturing.model.failure import FailureModel

        with session_scope() as session:
            payloads = load_bundle_payloads(session, version)
        return FailureModel.from_payloads(payloads)

    def champion_notes(self, champion: ModelVersion, training: TrainingSet) -> list[str]:
        if (champion.extra or {}).get("source") == "shipped":
            return [
                "the shipped champion was fitted on every AI4I run, the held-back ones "
                f"({training.holdout_window}) included: its figure there is in-sample"
            ]
        return []

    def evaluate(self, model: Any, training: TrainingSet) -> float:
        from sklearn.metrics import average_precision_score
        from verticals.domains.manufacturing.model import ai4i

        data: _Data = training.data
        held = data.frame[data.holdout]
        scores = model.predict_frame(held[list(ai4i.INPUT_COLUMNS)])
        return float(average_precision_score(held[ai4i.TARGET].to_numpy(), scores))
