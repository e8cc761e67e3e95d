"""Retraining the card-fraud model from its original data plus the analysts' labels.

The data, in time order (never train on the future):

- the original transactions (the file ``verticals train finance --data`` reads; setting
  ``VERTICALS_FINANCE_RETRAIN_DATA``, and/or ``verticals retrain finance --data FILE``);
- labelled transactions from ``finance_transactions`` (``TransactionRow.label``, the latest
  label an analyst gave). A label on a transaction of the file replaces the file's label; a
  live transaction the file does not hold joins with the features the scoring path stored.

Windows are counted back from the day after the newest transaction (E)::

    held-back slice   [E - holdout_days, E)        champion and challenger are scored here
    label-delay gap   [E - holdout_days - gap_days, E - holdout_days)   used by neither
    training          everything older              the challenger's recipe sees only this

The challenger is ``training.train`` (the ``verticals train finance`` protocol) on the training
part, by default with the quick grid; the metric is average precision on the slice, whose
features are computed over the whole file in time order as serving computes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import select
from verticals.core.errors import InvalidInput
from verticals.core.labeling.retrain import Challenger, RetrainRecipe, TrainingSet
from verticals.domains.finance.settings import MODEL_NAME, FeatureConfig

if TYPE_CHECKING:
    from sqlalchemy.orm import Session
    from verticals.core.compression.trees import TreeCompressionTarget
    from verticals.core.registry.store import ModelVersion
    from verticals.domains.finance.model.fraud_model import FraudModel

DAY = 86_400
WINDOW = re.compile(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})")


class RetrainSettings(BaseSettings):
    """``VERTICALS_FINANCE_RETRAIN_*``: where the original data is, and the windows."""

    model_config = SettingsConfigDict(env_prefix="VERTICALS_FINANCE_RETRAIN_", extra="ignore")

    data: Path | None = None
    holdout_days: int = 31
    gap_days: int = 7
    valid_days: int = 31
    grid: Literal["quick", "default"] = "quick"
    nthread: int = 2


@dataclass
class _Data:
    """The assembled rows, time-ordered: raw columns, every feature, where each row came from."""

    frame: pd.DataFrame  # TX_DATETIME, CUSTOMER_ID (str), TX_AMOUNT, TX_FRAUD
    X: np.ndarray
    days: np.ndarray
    train: np.ndarray  # mask
    holdout: np.ndarray  # mask
    cfg: FeatureConfig
    source: Path
    file_part: pd.DataFrame  # the original rows (for features under another config)
    file_rows: np.ndarray  # positions of the original rows in ``frame``


@dataclass
class FinanceRetrainRecipe(RetrainRecipe):
    data: Path | None = None
    holdout_days: int = 31
    gap_days: int = 7
    valid_days: int = 31
    grid: Literal["quick", "default"] = "quick"
    nthread: int = 2

    domain = "finance"
    models = (MODEL_NAME,)
    metric = "average_precision"
    higher_is_better = True

    @classmethod
    def from_settings(cls) -> FinanceRetrainRecipe:
        s = RetrainSettings()
        return cls(
            data=s.data,
            holdout_days=s.holdout_days,
            gap_days=s.gap_days,
            valid_days=s.valid_days,
            grid=s.grid,
            nthread=s.nthread,
        )

    # ------------------------------------------------------------ data
    def _original(self, extra_data: Path | None) -> tuple[pd.DataFrame, Path]:
        from verticals.domains.finance.model.data import LABEL, load_transactions, validate_frame

        paths = [p for p in (self.data, extra_data) if p is not None]
        if not paths:
            raise InvalidInput(
                "finance retraining needs its original transactions: set "
                "VERTICALS_FINANCE_RETRAIN_DATA or pass --data",
                {"field": "data"},
            )
        frames = [load_transactions(Path(p)) for p in paths]
        for path, frame in zip(paths, frames, strict=True):
            if LABEL not in frame.columns:
                raise InvalidInput(f"{path} has no {LABEL} column", {"field": "data"})
        if len(frames) == 1:
            return frames[0], Path(paths[0])
        both = pd.concat(frames, ignore_index=True)
        both = both.drop_duplicates("TRANSACTION_ID", keep="last")  # --data wins
        return validate_frame(both), Path(paths[0])

    def build(
        self, session: Session, model: str, since: datetime | None, extra_data: Path | None
    ) -> TrainingSet:
        from verticals.domains.finance.model.data import LABEL, frame_features, timestamps
        from verticals.domains.finance.model.features import feature_names
        from verticals.domains.finance.tables import TransactionRow

        frame, source = self._original(extra_data)
        if since is not None:
            frame = frame[frame["TX_DATETIME"] >= pd.Timestamp(since).tz_localize(None)]
            frame = frame.reset_index(drop=True)
        query = select(
            TransactionRow.transaction_id,
            TransactionRow.tx_datetime,
            TransactionRow.customer_id,
            TransactionRow.amount,
            TransactionRow.features,
            TransactionRow.label,
        ).where(TransactionRow.label.is_not(None))
        if since is not None:
            query = query.where(TransactionRow.tx_datetime >= since.replace(tzinfo=None))
        labelled = session.execute(query).all()
        cfg = FeatureConfig()
        n_features = len(feature_names(cfg))
        position = {str(t): i for i, t in enumerate(frame["TRANSACTION_ID"].to_numpy())}
        relabelled = np.zeros(len(frame), dtype=bool)
        labels = frame[LABEL].to_numpy().copy()
        live = []
        for tx_id, when, customer, amount, features, label in labelled:
            i = position.get(tx_id)
            if i is not None:
                labels[i], relabelled[i] = int(bool(label)), True
            elif features is not None and len(features) == n_features:
                live.append((when, str(customer), float(amount), int(bool(label)), features))
        frame = frame.assign(**{LABEL: labels})
        X_file = frame_features(frame, cfg)  # labels after the delay, as serving sees them
        rows = pd.DataFrame(
            {
                "TX_DATETIME": frame["TX_DATETIME"].to_numpy(),
                "CUSTOMER_ID": frame["CUSTOMER_ID"].astype(str).to_numpy(),
                "TX_AMOUNT": frame["TX_AMOUNT"].to_numpy(),
                LABEL: labels,
                "_label": relabelled,
                "_file": np.arange(len(frame)),
            }
        )
        X = X_file
        if live:
            live_rows = pd.DataFrame(
                {
                    "TX_DATETIME": pd.to_datetime([w for w, *_ in live]).astype("datetime64[s]"),
                    "CUSTOMER_ID": [c for _, c, *_ in live],
                    "TX_AMOUNT": [a for _, _, a, _, _ in live],
                    LABEL: [y for *_, y, _ in live],
                    "_label": True,
                    "_file": -1,
                }
            )
            live_features = np.array(
                [[np.nan if v is None else float(v) for v in f] for *_, f in live], dtype=float
            )
            rows = pd.concat([rows, live_rows], ignore_index=True)
            X = np.vstack([X_file, live_features])
        order = np.argsort(rows["TX_DATETIME"].to_numpy(), kind="stable")
        rows, X = rows.iloc[order].reset_index(drop=True), X[order]
        days = timestamps(rows) // DAY
        end = int(days.max()) + 1
        holdout_start = end - self.holdout_days
        train_end = holdout_start - self.gap_days
        train, holdout = days < train_end, days >= holdout_start
        if not holdout.any() or rows.loc[holdout, LABEL].sum() == 0:
            raise InvalidInput("the held-back slice has no fraud to measure on", {"field": "data"})

        def day(d: int) -> str:
            return str(np.datetime64(int(d), "D"))

        is_label = rows["_label"].to_numpy()
        return TrainingSet(
            data=_Data(
                frame=rows[["TX_DATETIME", "CUSTOMER_ID", "TX_AMOUNT", LABEL]],
                X=X,
                days=days,
                train=train,
                holdout=holdout,
                cfg=cfg,
                source=source,
                file_part=frame,
                file_rows=rows["_file"].to_numpy(),
            ),
            data_window=f"{day(days.min())}..{day(train_end - 1)}",
            holdout_window=f"{day(holdout_start)}..{day(end - 1)}",
            n_train=int(train.sum()),
            n_holdout=int(holdout.sum()),
            labels_used=int((is_label & train).sum()),
            detail={
                "source": source.name,
                "labelled_transactions": len(labelled),
                "relabelled_file_rows": int(relabelled.sum()),
                "live_rows": len(live),
                "labels_in_holdout": int((is_label & holdout).sum()),
                "gap_days": self.gap_days,
                "frauds_train": int(rows.loc[train, LABEL].sum()),
                "frauds_holdout": int(rows.loc[holdout, LABEL].sum()),
            },
        )

    # ------------------------------------------------------------ models
    def train_challenger(self, training: TrainingSet, model: str, version: str) -> Challenger:
        from verticals.core.config import get_settings
        from verticals.domains.finance.model.shipping import model_card
        from verticals.domains.finance.model.training import (
            Protocol,
            default_grid,
            quick_grid,
        )
        from verticals.domains.finance.model.training import train as run_training

        data: _Data = training.data
        part = data.frame[data.train].reset_index(drop=True)
        protocol = Protocol(test_days=0, gap_days=self.gap_days, valid_days=self.valid_days)
        grid = quick_grid(self.nthread) if self.grid == "quick" else default_grid(self.nthread)
        report = run_training(
            part,
            cfg=data.cfg,
            protocol=protocol,
            grid=grid,
            features=data.X[data.train],
            log=lambda _msg: None,
        )
        command = f"verticals retrain finance --model {model}"
        card = model_card(report, version, data.source, training.n_train, command)
        settings = get_settings()
        settings.ensure_home()
        path = settings.artifacts_dir / self.domain / f"{model}-{version}.ubj"
        report.model.save(path)
        return Challenger(
            model=report.model, artifact=path, card=card, extra={"summary": report.summary()}
        )

    def load(self, version: ModelVersion) -> FraudModel:
        from verticals.domains.finance.model.production import load_model

        return load_model(version, nthread=self.nthread)

    def champion_notes(self, champion: ModelVersion, training: TrainingSet) -> list[str]:
        """Whether the champion was fitted on days of the held-back slice (the shipped model
        is fitted on its whole file): then its figure there is in-sample, the challenger's
        is not."""
        window = (champion.extra.get("lineage") or {}).get("data_window") or ""
        found = WINDOW.findall(window or champion.card.training_data)
        start = training.holdout_window.split("..")[0]
        if found and found[-1][1] >= start:
            return [
                f"the champion was trained on {found[-1][0]}..{found[-1][1]}, into the "
                f"held-back slice {training.holdout_window}: its figure there is in-sample"
            ]
        return []

    def _holdout_features(self, model: FraudModel, data: _Data) -> np.ndarray:
        """Slice features under ``model``'s own feature config (recomputed over the original
        rows when it differs from the one the set was built with)."""
        if model.feature_config == data.cfg:
            return data.X[data.holdout]
        from verticals.domains.finance.model.data import frame_features

        X_file = frame_features(data.file_part, model.feature_config)
        rows = data.file_rows[data.holdout]
        if (rows < 0).any():
            raise InvalidInput("live rows were stored under another feature config")
        return X_file[rows]

    def evaluate(self, model: Any, training: TrainingSet) -> float:
        from sklearn.metrics import average_precision_score
        from verticals.domains.finance.model.data import LABEL

        data: _Data = training.data
        y = data.frame[LABEL].to_numpy()[data.holdout]
        return float(average_precision_score(y, model.predict(self._holdout_features(model, data))))

    def compression_target(
        self, challenger: Challenger, training: TrainingSet, model: str, version: str
    ) -> TreeCompressionTarget:
        from sklearn.metrics import average_precision_score
        from verticals.core.compression.trees import TreeCompressionTarget
        from verticals.domains.finance.model.data import LABEL

        data: _Data = training.data
        fraud: FraudModel = challenger.model
        rows = fraud.booster_rows(data.X[data.holdout])
        y = data.frame[LABEL].to_numpy()[data.holdout]

        def metric(predict: Any) -> tuple[float, str]:
            return float(average_precision_score(y, predict(rows))), self.metric

        return TreeCompressionTarget(
            name=f"{self.domain}/{model}",
            booster=fraud.booster,
            rows=rows,
            metric=metric,
            version=version,
        )
