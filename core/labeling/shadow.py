"""Shadow evaluation: a challenger left in staging scores the live traffic its champion served,
so the two compare on the same live subjects once people label them, before any promotion.

Shadow scores are recorded (``shadow_predictions``) and never returned to a caller: scoring runs
off the request path (``verticals retrain <domain> --shadow``, or a CronJob running it), reading
the inputs the serving path stored. A domain opts in with ``Domain.shadow()``, a
:class:`ShadowSource`: which live rows were served after the challenger was staged, with the
inputs the champion scored and its answer, and how a loaded challenger scores those inputs. The
challenger is loaded through the domain's retraining recipe (``RetrainRecipe.load``: sha256
verified).

Each run resumes after the last subject recorded for the version, in (served_at, tenant,
subject) order, so no subject is scored twice (the unique constraint backs it up) and a run
with nothing new does not even load the model.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field
from sqlalchemy import and_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from verticals.core.errors import InvalidInput, NotFound
from verticals.core.labeling.shadow_tables import ShadowPredictionRow
from verticals.core.labeling.tables import LabelItemRow

if TYPE_CHECKING:
    from verticals.core.registry.store import ModelVersion

log = logging.getLogger(__name__)

Cursor = tuple[datetime, str, str]  # (served_at, tenant, subject): traffic order


@dataclass(frozen=True)
class ShadowRow:
    """One live subject the champion served: its inputs as the champion saw them, its answer."""

    tenant: str
    subject: str
    served_at: datetime
    champion_version: str | None
    champion_score: float | None
    inputs: Any


class ShadowSource(ABC):
    """What a domain gives shadow evaluation. ``models``: the models it can shadow (the first is
    the default); ``positive_label``: the accepted label counted as the positive class."""

    models: tuple[str, ...]
    positive_label: str

    @abstractmethod
    def pending(self, session: Session, model: str, after: Cursor, limit: int) -> list[ShadowRow]:
        """Live traffic of ``model`` served strictly after ``after`` in (served_at, tenant,
        subject) order, oldest first, at most ``limit`` rows."""

    @abstractmethod
    def score(self, challenger: Any, inputs: Sequence[Any]) -> Sequence[float]:
        """The loaded challenger's scores for ``inputs`` (one per input, in order)."""


class ShadowRun(BaseModel):
    """What one shadow scoring run did."""

    domain: str
    model: str
    version: str
    champion_version: str | None
    scored: int
    total: int  # shadow predictions of the version after the run
    seconds: float


class ShadowMetrics(BaseModel):
    version: str | None
    average_precision: float | None
    roc_auc: float | None


class ShadowReport(BaseModel):
    """Challenger against champion on the same labelled live subjects."""

    domain: str
    model: str
    version: str
    stage: str
    staged_at: datetime
    positive_label: str
    shadowed: int  # shadow predictions recorded
    n: int  # labelled subjects with both scores: what the metrics are computed on
    positives: int
    unlabelled: int
    without_champion_score: int
    champion_versions: list[str] = Field(default_factory=list)
    challenger: ShadowMetrics
    champion: ShadowMetrics
    mean_abs_score_difference: float | None = None  # over every shadowed subject
    first_served_at: datetime | None = None
    last_served_at: datetime | None = None
    note: str = ""

    def summary(self) -> str:
        """One line for people: both models on the same labelled live subjects."""

        def fmt(value: float | None) -> str:
            return "-" if value is None else f"{value:.4f}"

        line = (
            f"shadow {self.version} vs {', '.join(self.champion_versions) or 'champion'} on "
            f"{self.n} labelled live subjects ({self.positives} {self.positive_label}, "
            f"{self.unlabelled} of {self.shadowed} shadowed unlabelled): AP "
            f"{fmt(self.challenger.average_precision)} vs {fmt(self.champion.average_precision)}, "
            f"ROC AUC {fmt(self.challenger.roc_auc)} vs {fmt(self.champion.roc_auc)}"
        )
        return line + (f" ({self.note})" if self.note else "")


def source_for(plugins: Any, domain: str) -> ShadowSource:
    """The shadow source ``domain`` declares (NotFound for an unknown domain, InvalidInput for
    one that declares none)."""
    source: ShadowSource | None = plugins.get(domain).shadow()
    if source is None:
        raise InvalidInput(f"domain {domain!r} declares no shadow source", {"field": "domain"})
    return source


def model_for(source: ShadowSource, domain: str, model: str | None) -> str:
    model = model or source.models[0]
    if model not in source.models:
        raise InvalidInput(
            f"{domain} cannot shadow {model!r}", {"field": "model", "known": list(source.models)}
        )
    return model


def staged_version(
    session: Session, domain: str, model: str, version: str | None = None
) -> ModelVersion:
    """``version``, or the newest staging version registered after the production one."""
    from verticals.core.registry.store import get_version, list_versions, production_version

    if version is not None:
        return get_version(session, domain, model, version)
    production = production_version(session, domain, model)
    staged = [
        v
        for v in list_versions(session, domain, model)
        if v.stage == "staging" and (production is None or v.created_at > production.created_at)
    ]
    if not staged:
        raise NotFound(
            f"{domain}/{model} has no staged challenger newer than production",
            {"field": "version"},
        )
    return max(staged, key=lambda v: v.created_at)


def _aware(at: datetime) -> datetime:
    """The registry's timestamps come back naive from SQLite; they are UTC."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _resume_point(session: Session, staged: ModelVersion) -> Cursor:
    last = session.execute(
        select(
            ShadowPredictionRow.served_at, ShadowPredictionRow.tenant, ShadowPredictionRow.subject
        )
        .where(
            ShadowPredictionRow.domain == staged.domain,
            ShadowPredictionRow.model == staged.name,
            ShadowPredictionRow.version == staged.version,
        )
        .order_by(
            ShadowPredictionRow.served_at.desc(),
            ShadowPredictionRow.tenant.desc(),
            ShadowPredictionRow.subject.desc(),
        )
        .limit(1)
    ).first()
    if last is None:
        return (_aware(staged.created_at), "", "")
    return (last[0], last[1], last[2])


def _count(session: Session, staged: ModelVersion) -> int:
    from sqlalchemy import func

    return int(
        session.scalar(
            select(func.count(ShadowPredictionRow.id)).where(
                ShadowPredictionRow.domain == staged.domain,
                ShadowPredictionRow.model == staged.name,
                ShadowPredictionRow.version == staged.version,
            )
        )
        or 0
    )


def shadow_score(
    plugins: Any,
    domain: str,
    model: str | None = None,
    version: str | None = None,
    *,
    batch_size: int = 512,
    max_rows: int | None = None,
) -> ShadowRun:
    """Score the not yet shadowed live traffic of ``domain``/``model`` with its staged
    challenger (``version``, default the newest staging version newer than production) in
    batches, and record the scores beside the champion's. Never called on a request path."""
    from verticals.core.db import session_scope
    from verticals.core.labeling.retrain import recipe_for
    from verticals.core.registry.store import production_version

    if batch_size < 1:
        raise InvalidInput("batch_size must be at least 1", {"field": "batch_size"})
    started = time.perf_counter()
    source = source_for(plugins, domain)
    model = model_for(source, domain, model)
    recipe = recipe_for(plugins, domain)
    with session_scope() as session:
        staged = staged_version(session, domain, model, version)
        champion = production_version(session, domain, model)
        cursor = _resume_point(session, staged)
    if staged.stage != "staging":
        raise InvalidInput(
            f"{staged.ref} is in {staged.stage}, not staging: only a staged challenger is shadowed",
            {"field": "version"},
        )
    challenger: Any = None
    scored = 0
    while max_rows is None or scored < max_rows:
        limit = batch_size if max_rows is None else min(batch_size, max_rows - scored)
        with session_scope() as session:
            rows = source.pending(session, model, cursor, limit)
        if not rows:
            break
        if challenger is None:  # loaded only when there is something to score
            challenger = recipe.load(staged)
        scores = [float(s) for s in source.score(challenger, [r.inputs for r in rows])]
        if len(scores) != len(rows):
            raise ValueError(
                f"{domain} shadow source returned {len(scores)} scores for {len(rows)}"
            )
        try:
            with session_scope() as session:
                session.add_all(
                    ShadowPredictionRow(
                        tenant=row.tenant,
                        domain=domain,
                        model=model,
                        version=staged.version,
                        subject=row.subject,
                        score=score,
                        champion_version=row.champion_version,
                        champion_score=row.champion_score,
                        served_at=row.served_at,
                    )
                    for row, score in zip(rows, scores, strict=True)
                )
        except IntegrityError:  # another run recorded these subjects first: leave it to it
            log.info("shadow %s: another run is recording; stopping this one", staged.ref)
            break
        scored += len(rows)
        last = rows[-1]
        cursor = (last.served_at, last.tenant, last.subject)
        if len(rows) < limit:
            break
    with session_scope() as session:
        total = _count(session, staged)
    return ShadowRun(
        domain=domain,
        model=model,
        version=staged.version,
        champion_version=champion.version if champion else None,
        scored=scored,
        total=total,
        seconds=round(time.perf_counter() - started, 3),
    )


def _metrics(version: str | None, y: Sequence[int], scores: Sequence[float]) -> ShadowMetrics:
    if len(set(y)) < 2:  # both classes are needed for either metric
        return ShadowMetrics(version=version, average_precision=None, roc_auc=None)
    from sklearn.metrics import (  # type: ignore[import-untyped]  # no stubs installed
        average_precision_score,
        roc_auc_score,
    )

    return ShadowMetrics(
        version=version,
        average_precision=float(average_precision_score(y, scores)),
        roc_auc=float(roc_auc_score(y, scores)),
    )


def shadow_report(
    session: Session, domain: str, model: str, version: str | None = None, *, positive: str
) -> ShadowReport:
    """The staged challenger (``version``, default as :func:`staged_version`) against the
    champion on the live subjects it shadowed that carry an accepted label (``positive``: the
    label counted as the positive class), both scored on exactly those subjects."""
    staged = staged_version(session, domain, model, version)
    query = (
        select(ShadowPredictionRow, LabelItemRow.label)
        .outerjoin(
            LabelItemRow,
            and_(
                LabelItemRow.domain == ShadowPredictionRow.domain,
                LabelItemRow.model == ShadowPredictionRow.model,
                LabelItemRow.tenant == ShadowPredictionRow.tenant,
                LabelItemRow.subject == ShadowPredictionRow.subject,
                LabelItemRow.label.is_not(None),
            ),
        )
        .where(
            ShadowPredictionRow.domain == domain,
            ShadowPredictionRow.model == model,
            ShadowPredictionRow.version == staged.version,
        )
        .order_by(ShadowPredictionRow.served_at, ShadowPredictionRow.id)
    )
    y: list[int] = []
    challenger_scores: list[float] = []
    champion_scores: list[float] = []
    shadowed = unlabelled = without_champion = 0
    diffs: list[float] = []
    champions: set[str] = set()
    first: datetime | None = None
    last: datetime | None = None
    for row, label in session.execute(query):
        shadowed += 1
        first = first or row.served_at
        last = row.served_at
        if row.champion_version:
            champions.add(row.champion_version)
        if row.champion_score is None:
            without_champion += 1
        else:
            diffs.append(abs(row.score - row.champion_score))
        if label is None:
            unlabelled += 1
            continue
        if row.champion_score is None:
            continue  # compared only where both answered
        y.append(int(label == positive))
        challenger_scores.append(row.score)
        champion_scores.append(row.champion_score)
    champion_label = ", ".join(sorted(champions)) or None
    note = ""
    if not y:
        note = "no labelled shadowed subjects yet"
    elif len(set(y)) < 2:
        note = f"the {len(y)} labelled subjects are all one class: both are needed to compare"
    return ShadowReport(
        domain=domain,
        model=model,
        version=staged.version,
        stage=staged.stage,
        staged_at=_aware(staged.created_at),
        positive_label=positive,
        shadowed=shadowed,
        n=len(y),
        positives=sum(y),
        unlabelled=unlabelled,
        without_champion_score=without_champion,
        champion_versions=sorted(champions),
        challenger=_metrics(staged.version, y, challenger_scores),
        champion=_metrics(champion_label, y, champion_scores),
        mean_abs_score_difference=sum(diffs) / len(diffs) if diffs else None,
        first_served_at=first,
        last_served_at=last,
        note=note,
    )


def shadow_report_for(
    plugins: Any, domain: str, model: str | None = None, version: str | None = None
) -> ShadowReport:
    """:func:`shadow_report` with the domain's own positive label and default model."""
    from verticals.core.db import session_scope

    source = source_for(plugins, domain)
    model = model_for(source, domain, model)
    with session_scope() as session:
        return shadow_report(session, domain, model, version, positive=source.positive_label)
