"""Where a new study goes in the clinicians' review queue (core's labeling queue, one item per
study, the task's model): out-of-scope studies first, then the most uncertain, by the distance
of the probability to the task's threshold (the margin strategy of core's active learning)."""

from __future__ import annotations

from sqlalchemy.orm import Session
from verticals.core.labeling import store
from verticals.core.labeling.strategies import doubt

DOMAIN = "medical"


def task_labels() -> dict[str, tuple[str, ...]]:
    """Each task model's labels, the positive one first (the labeling queue's convention)."""
    from verticals.domains.medical import model_api

    return {
        name: (task.positive_label, *(x for x in task.labels if x != task.positive_label))
        for name, task in sorted(model_api.tasks().items())
    }


def review_priority(
    probability: float, threshold: float, *, in_scope: bool, ood_score: float | None
) -> tuple[float, str]:
    """(priority, why): uncertainty in [0, 1], plus 1 for a study outside the model's scope."""
    choice = doubt(probability, threshold)
    if in_scope:
        return choice.score, choice.reason
    unusual = "" if ood_score is None else f" (out-of-distribution score {ood_score:.2f})"
    return 1.0 + choice.score, f"outside what the model was trained on{unusual}; {choice.reason}"


def queue_study(
    session: Session,
    *,
    tenant: str,
    task: str,
    study_id: str,
    probability: float,
    threshold: float,
    in_scope: bool,
    ood_score: float | None,
    model_version: str,
) -> None:
    priority, why = review_priority(probability, threshold, in_scope=in_scope, ood_score=ood_score)
    store.enqueue(
        session,
        tenant=tenant,
        domain=DOMAIN,
        model=task,
        subject=study_id,
        priority=priority,
        strategy="uncertainty",
        reason=why,
        score=probability,
        model_version=model_version,
    )


def study_item(session: Session, *, tenant: str, task: str, study_id: str):  # noqa: ANN201
    return store.item_for(session, tenant=tenant, domain=DOMAIN, model=task, subject=study_id)
