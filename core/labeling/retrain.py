"""Retraining with champion/challenger promotion, the same for every domain.

A domain declares a :class:`RetrainRecipe` (``Domain.retraining()``); :func:`retrain` runs it:

1. ``build``: the training set (the domain's original data plus the accepted labels) and a
   held-back slice. For time-ordered data the slice is the newest period and everything trained
   on is older than it: the challenger never sees the future it is judged on.
2. ``train_challenger``: the domain's own recipe, on the training part only.
3. Champion (production in the registry) and challenger are scored by ``evaluate`` on the SAME
   slice, so the comparison does not depend on figures measured elsewhere.
4. Where the recipe gives a compression target, the challenger is compressed with the core
   pipeline and the variant serving would use must stay within its tolerance.
5. :class:`~verticals.core.registry.gate.PromotionGate` decides (at least as good as the
   champion, ties to the newer). The challenger is registered either way, with its lineage on
   the card and in ``extra["lineage"]``; it is promoted, or stays in staging with the reason.

Nothing here runs inside the API: a person (``verticals retrain``), the schedule (``--every``)
or a worker draining the jobs monitoring alerts queue (:mod:`.jobs`) calls it.
"""

from __future__ import annotations

import logging
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from verticals.core.errors import InvalidInput, NotFound
from verticals.core.registry.cards import ModelCard
from verticals.core.registry.gate import PromotionGate

if TYPE_CHECKING:
    from verticals.core.compression.report import CompressionReport
    from verticals.core.compression.target import CompressionTarget
    from verticals.core.compression.trees import TreeCompressionTarget
    from verticals.core.registry.store import ModelVersion

log = logging.getLogger(__name__)

Trigger = Literal["manual", "schedule", "alert"]
Log = Callable[[str], None]


@dataclass
class TrainingSet:
    """What ``build`` assembled. ``data`` is the domain's own (frames, feature rows); the rest
    is its description, copied into the lineage."""

    data: Any
    data_window: str  # what the challenger is trained on, e.g. "2018-04-01..2018-07-24"
    holdout_window: str  # the held-back slice both models are scored on
    n_train: int
    n_holdout: int
    labels_used: int  # accepted labels that reached the training part
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Challenger:
    """A trained, not yet registered model: the file to register, its card, and the in-memory
    model ``evaluate`` and ``compression_target`` read. ``derived``: further files of the
    version (a bundle's other parts), registered as its derived artifacts by kind."""

    model: Any
    artifact: Path
    card: ModelCard
    extra: dict[str, Any] = field(default_factory=dict)
    derived: dict[str, Path] = field(default_factory=dict)


class RetrainRecipe(ABC):
    """How one domain retrains its models. Attributes are declared by the subclass.

    ``models``: the model names it can retrain (the first is the default); ``metric`` and
    ``higher_is_better``: what ``evaluate`` returns and its direction; ``max_metric_drop``: how
    much worse than the champion a challenger may be (0: at least as good); ``compressed_variant``:
    the compression variant whose metric must stay within its tolerance (None: the pipeline's
    default for the target's kind).
    """

    domain: str
    models: tuple[str, ...]
    metric: str
    higher_is_better: bool = True
    max_metric_drop: float = 0.0
    compressed_variant: str | None = None
    compression_budget_s: float = 0.3

    @abstractmethod
    def build(
        self, session: Session, model: str, since: datetime | None, extra_data: Path | None
    ) -> TrainingSet:
        """The original data plus the accepted labels, split into training and held-back parts
        (labels and rows given before ``since`` left out)."""

    @abstractmethod
    def train_challenger(self, training: TrainingSet, model: str, version: str) -> Challenger:
        """Train on ``training``'s training part with the domain's recipe; save the artifact."""

    @abstractmethod
    def load(self, version: ModelVersion) -> Any:
        """The registered model (its artifact opened through the verifying loader)."""

    @abstractmethod
    def evaluate(self, model: Any, training: TrainingSet) -> float:
        """``metric`` of ``model`` (the champion's or the challenger's) on the held-back slice."""

    def champion_notes(self, champion: ModelVersion, training: TrainingSet) -> list[str]:
        """What an operator should know about the comparison, e.g. that the champion was
        trained on data inside the held-back slice (its figure is then in-sample)."""
        return []

    def compression_target(
        self, challenger: Challenger, training: TrainingSet, model: str, version: str
    ) -> CompressionTarget | TreeCompressionTarget | None:
        """The challenger as a compression target measured on the held-back slice; None when
        the domain does not compress this model."""
        return None


class CompressedCheck(BaseModel):
    variant: str
    metric: float | None
    metric_drop: float | None
    max_metric_drop: float
    within_tolerance: bool
    detail: str = ""


class Lineage(BaseModel):
    parent_version: str | None
    data_window: str
    holdout_window: str
    labels_used: int
    n_train: int
    n_holdout: int
    trigger: Trigger
    since: datetime | None = None
    extra_data: str | None = None
    job_id: int | None = None
    alert_id: int | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class RetrainReport(BaseModel):
    """What one retraining decided, and on which figures."""

    domain: str
    model: str
    decision: Literal["promoted", "staged"]
    reason: str
    metric: str
    higher_is_better: bool
    champion_version: str | None
    champion_metric: float | None
    challenger_version: str
    challenger_metric: float | None
    compressed: CompressedCheck | None = None
    lineage: Lineage
    notes: list[str] = Field(default_factory=list)
    seconds: float = 0.0


def new_version(now: datetime | None = None) -> str:
    """A sortable version name; milliseconds keep two retrains of one second apart."""
    now = now or datetime.now(UTC)
    return f"{now:%Y.%m.%d-%H%M%S}.{now.microsecond // 1000:03d}-retrain"


def _fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:.4f}"


def _compress(
    recipe: RetrainRecipe, challenger: Challenger, training: TrainingSet, model: str, version: str
) -> tuple[CompressionReport | None, CompressedCheck | None]:
    from verticals.core.compression.pipeline import compress
    from verticals.core.compression.trees import TreeCompressionTarget, compress_trees

    target = recipe.compression_target(challenger, training, model, version)
    if target is None:
        return None, None
    folder = Path(tempfile.mkdtemp(prefix="verticals-retrain-"))
    is_tree = isinstance(target, TreeCompressionTarget)
    variant = recipe.compressed_variant or ("onnx-fp32" if is_tree else "onnx-int8")
    try:
        if isinstance(target, TreeCompressionTarget):
            report = compress_trees(target, folder, budget_s=recipe.compression_budget_s)
        else:
            report = compress(target, folder)
        row = report.variant(variant)
    except Exception as exc:  # noqa: BLE001 - a challenger that cannot be compressed stays staged
        log.warning("compressing %s/%s:%s failed: %s", recipe.domain, model, version, exc)
        return None, CompressedCheck(
            variant=variant,
            metric=None,
            metric_drop=None,
            max_metric_drop=target.max_metric_drop,
            within_tolerance=False,
            detail=f"compression failed: {type(exc).__name__}: {exc}",
        )
    within = bool(row.within_tolerance) and row.metric is not None
    return report, CompressedCheck(
        variant=variant,
        metric=row.metric,
        metric_drop=row.metric_drop,
        max_metric_drop=report.max_metric_drop,
        within_tolerance=within,
        detail=row.notes,
    )


def decide(
    gate: PromotionGate,
    champion: float | None,
    challenger: float | None,
    compressed: CompressedCheck | None,
    *,
    has_champion: bool,
) -> tuple[bool, str]:
    """(promote?, reason) from the gate and the compressed variant's check."""
    name = gate.name
    if challenger is None or challenger != challenger:
        return False, f"the challenger's metric could not be measured on {name}'s held-back slice"
    if has_champion and not gate.accepts(champion, challenger):
        drop = gate.metric_drop(champion, challenger) if champion is not None else 0.0
        return False, (
            f"challenger {_fmt(challenger)} is worse than the champion {_fmt(champion)} "
            f"by {drop:.4f} (tolerance {gate.max_metric_drop:.4f}) on the same held-back slice"
        )
    if compressed is not None and not compressed.within_tolerance:
        if compressed.metric_drop is None:
            return False, f"compressed variant {compressed.variant}: {compressed.detail}"
        return False, (
            f"compressed variant {compressed.variant} loses {compressed.metric_drop:.4f}, "
            f"more than its tolerance {compressed.max_metric_drop:.4f}"
        )
    if not has_champion:
        return True, "no production version: nothing to beat"
    if champion is not None and challenger == champion:
        return True, f"challenger ties the champion ({_fmt(challenger)}): ties go to the newer"
    return True, (
        f"challenger {_fmt(challenger)} is not worse than the champion {_fmt(champion)} "
        "on the same held-back slice"
    )


def _lineage_card(
    card: ModelCard, lineage: Lineage, decision: str, reason: str, metrics: dict[str, float]
) -> ModelCard:
    parent = lineage.parent_version or "nothing"
    note = (
        f"retrained ({lineage.trigger}) from {parent} on {lineage.data_window} with "
        f"{lineage.labels_used} accepted labels; judged on {lineage.holdout_window}: "
        f"{decision}: {reason}"
    )
    return card.model_copy(
        update={
            "metrics": metrics,
            "changelog": {**card.changelog, card.version: note},
            "training_data": (card.training_data + "; " if card.training_data else "")
            + f"retraining window {lineage.data_window} ({lineage.n_train} rows, "
            f"{lineage.labels_used} accepted labels)",
            "evaluation_data": f"held-back slice {lineage.holdout_window} "
            f"({lineage.n_holdout} rows), champion and challenger scored on it alike",
        }
    )


def retrain(
    recipe: RetrainRecipe,
    *,
    model: str | None = None,
    since: datetime | None = None,
    extra_data: Path | None = None,
    trigger: Trigger = "manual",
    job_id: int | None = None,
    alert_id: int | None = None,
    log_fn: Log | None = None,
) -> RetrainReport:
    """Train a challenger, judge it against the champion on the same held-back slice, compress
    it, and promote it or leave it in staging with the reason (see the module docstring)."""
    from verticals.core.db import session_scope
    from verticals.core.registry import register_derived
    from verticals.core.registry.store import production_version, promote, register

    say = log_fn or (lambda msg: log.info("%s", msg))
    started = time.perf_counter()
    model = model or recipe.models[0]
    if model not in recipe.models:
        raise NotFound(
            f"{recipe.domain} cannot retrain {model!r}", {"field": "model", "known": recipe.models}
        )
    if extra_data is not None and not Path(extra_data).is_file():
        raise InvalidInput(f"data file {extra_data} does not exist", {"field": "data"})
    with session_scope() as session:
        champion = production_version(session, recipe.domain, model)
        training = recipe.build(session, model, since, extra_data)
    say(
        f"{recipe.domain}/{model}: training on {training.data_window} ({training.n_train} rows, "
        f"{training.labels_used} labels), held back {training.holdout_window} "
        f"({training.n_holdout} rows)"
    )
    version = new_version()
    challenger = recipe.train_challenger(training, model, version)
    challenger_metric = recipe.evaluate(challenger.model, training)
    champion_metric, notes = None, []
    if champion is not None:
        champion_metric = recipe.evaluate(recipe.load(champion), training)
        notes = recipe.champion_notes(champion, training)
    say(
        f"{recipe.metric} on the held-back slice: champion "
        f"{champion.version if champion else '-'} {_fmt(champion_metric)}, "
        f"challenger {version} {_fmt(challenger_metric)}"
    )
    compression, compressed = _compress(recipe, challenger, training, model, version)
    gate = PromotionGate(
        f"{recipe.domain}/{model}",
        higher_is_better=recipe.higher_is_better,
        max_metric_drop=recipe.max_metric_drop,
    )
    promoted, reason = decide(
        gate, champion_metric, challenger_metric, compressed, has_champion=champion is not None
    )
    decision: Literal["promoted", "staged"] = "promoted" if promoted else "staged"
    lineage = Lineage(
        parent_version=champion.version if champion else None,
        data_window=training.data_window,
        holdout_window=training.holdout_window,
        labels_used=training.labels_used,
        n_train=training.n_train,
        n_holdout=training.n_holdout,
        trigger=trigger,
        since=since,
        extra_data=str(extra_data) if extra_data is not None else None,
        job_id=job_id,
        alert_id=alert_id,
        detail=training.detail,
    )
    metrics = {
        **{k: float(v) for k, v in challenger.card.metrics.items()},
        **({recipe.metric: float(challenger_metric)} if challenger_metric is not None else {}),
    }
    if champion_metric is not None:
        metrics[f"champion_{recipe.metric}"] = float(champion_metric)
    if compressed is not None and compressed.metric is not None:
        metrics[f"{compressed.variant}_{recipe.metric}"] = float(compressed.metric)
    card = _lineage_card(
        challenger.card.model_copy(update={"version": version}), lineage, decision, reason, metrics
    )
    report = RetrainReport(
        domain=recipe.domain,
        model=model,
        decision=decision,
        reason=reason,
        metric=recipe.metric,
        higher_is_better=recipe.higher_is_better,
        champion_version=champion.version if champion else None,
        champion_metric=champion_metric,
        challenger_version=version,
        challenger_metric=challenger_metric,
        compressed=compressed,
        lineage=lineage,
        notes=notes,
    )
    with session_scope() as session:
        registered = register(
            session,
            domain=recipe.domain,
            name=model,
            version=version,
            artifact_path=challenger.artifact,
            metrics=metrics,
            card=card,
            stage="staging",
            extra={
                **challenger.extra,
                "source": "retrain",
                "lineage": lineage.model_dump(mode="json"),
                "retrain": {"decision": decision, "reason": reason, "notes": notes},
            },
        )
        for kind, path in challenger.derived.items():
            register_derived(session, registered, kind, path)
        if compression is not None:
            _store_compression(session, compression, model, version)
        if promoted:
            current = production_version(session, recipe.domain, model)
            if current is not None and champion is not None and current.version != champion.version:
                # production changed while we trained: judged against another model, stay staged
                report.decision, report.reason = (
                    "staged",
                    (
                        f"production moved from {champion.version} to {current.version} during the "
                        "retrain; run it again to judge against the new champion"
                    ),
                )
            else:
                promote(session, domain=recipe.domain, name=model, version=version)
    report.seconds = round(time.perf_counter() - started, 2)
    for note in notes:
        say(f"note: {note}")
    say(f"{recipe.domain}/{model}:{version} {report.decision}: {report.reason}")
    return report


def _store_compression(
    session: Session, compression: CompressionReport, model: str, version: str
) -> None:
    """Keep the variants beside the challenger (derived artifacts, variant versions)."""
    from verticals.core.compression.store import artifacts_folder, store_report

    compression = compression.model_copy(update={"version": version})
    store_report(session, compression, copy_to=artifacts_folder(compression.model, version))


def recipe_for(plugins: Any, domain: str) -> RetrainRecipe:
    """The retraining recipe ``domain`` declares (NotFound for an unknown domain, InvalidInput
    for one that declares none)."""
    recipe = plugins.get(domain).retraining()
    if recipe is None:
        raise InvalidInput(f"domain {domain!r} declares no retraining recipe", {"field": "domain"})
    return recipe
