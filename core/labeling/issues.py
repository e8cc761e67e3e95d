"""Label issues: stored labels that the model's out-of-sample predictions strongly disagree with
(confident learning, Northcutt et al. 2021), sent to a second reviewer.

Per class ``j`` the threshold ``t_j`` is the mean predicted probability of ``j`` over the items
labelled ``j`` (how confident the model is, on average, when it is right). An item labelled
``y`` is confidently of class ``j`` when ``p_j >= t_j``; where that ``j`` (the most probable of
those) is not ``y``, the label is a likely issue, ranked by how little probability the model
gave the given label (self-confidence). cleanlab implements the same method (AGPL-3.0, which
we do not take on for a dozen lines of numpy).

The probabilities must be out of sample. The ones the queue stores are: an item's score is the
served model's output when the item was queued, before anyone labelled it, so no model that
produced a stored score was trained on that item's label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session
from verticals.core.db.base import utcnow
from verticals.core.labeling.tables import LabelAnnotationRow, LabelItemRow

MIN_LABELS = 30  # per-class thresholds from fewer labels flag noise, not issues


@dataclass(frozen=True)
class Flag:
    index: int
    given: int
    suggested: int
    self_confidence: float  # the probability the model gave the given label


def per_class_thresholds(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """``t_j``: mean ``p_j`` over the items labelled ``j`` (1.0 for a class nobody used, so
    nothing is confidently of it)."""
    k = probs.shape[1]
    out = np.ones(k)
    for j in range(k):
        mine = labels == j
        if mine.any():
            out[j] = float(probs[mine, j].mean())
    return out


def find_label_issues(labels: Sequence[int] | np.ndarray, probs: np.ndarray) -> list[Flag]:
    """Items whose confident class differs from their label, least self-confident first.
    ``probs`` is (n, k) out-of-sample class probabilities, or (n,) for the positive class."""
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim == 1:
        p = np.column_stack([1.0 - p, p])
    if len(y) != len(p):
        raise ValueError(f"{len(y)} labels but {len(p)} predictions")
    if not len(y):
        return []
    thresholds = per_class_thresholds(y, p)
    confident = p >= thresholds - 1e-12
    masked = np.where(confident, p, -np.inf)
    suggested = masked.argmax(axis=1)
    has_any = confident.any(axis=1)
    self_conf = p[np.arange(len(y)), y]
    issue = has_any & (suggested != y)
    flags = [
        Flag(int(i), int(y[i]), int(suggested[i]), float(self_conf[i])) for i in np.where(issue)[0]
    ]
    return sorted(flags, key=lambda f: f.self_confidence)


def flag_label_issues(
    session: Session,
    *,
    domain: str,
    model: str,
    positive: str,
    tenant: str | None = None,
    min_labels: int = MIN_LABELS,
) -> list[LabelItemRow]:
    """Flag the labelled items of a binary model whose label its stored score strongly
    disagrees with: they go back to the queue for a second reviewer (``second_review``, with
    ``issue_score`` = 1 - self-confidence). Items a second person already labelled stay."""
    query = select(LabelItemRow).where(
        LabelItemRow.domain == domain,
        LabelItemRow.model == model,
        LabelItemRow.label.is_not(None),
        LabelItemRow.score.is_not(None),
    )
    if tenant is not None:
        query = query.where(LabelItemRow.tenant == tenant)
    items = list(session.scalars(query.order_by(LabelItemRow.id)))
    labels = np.array([int(item.label == positive) for item in items], dtype=np.int64)
    if len(items) < min_labels or labels.min(initial=0) == labels.max(initial=0):
        return []
    scores = np.array([item.score for item in items], dtype=np.float64)
    flagged: list[LabelItemRow] = []
    now = utcnow()
    for flag in find_label_issues(labels, scores):
        item = items[flag.index]
        item.issue_score = round(1.0 - flag.self_confidence, 6)
        if item.second_review or _labellers(session, item) >= 2:
            continue
        item.second_review = True
        item.status, item.assigned_to, item.updated_at = "pending", None, now
        item.reason = (
            f"likely label issue: labelled {item.label!r}, but the model gave it only "
            f"{flag.self_confidence:.1%}: a second opinion"
        )
        flagged.append(item)
    return flagged


def _labellers(session: Session, item: LabelItemRow) -> int:
    query = select(LabelAnnotationRow.labeller).where(LabelAnnotationRow.item_id == item.id)
    return len(set(session.scalars(query)))
