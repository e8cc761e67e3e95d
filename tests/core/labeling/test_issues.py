"""Confident learning: labels the out-of-sample predictions strongly disagree with."""

from __future__ import annotations

import numpy as np
from verticals.core.db import session_scope
from verticals.core.labeling import store
from verticals.core.labeling.issues import find_label_issues, flag_label_issues


def _noisy(n: int = 400, flips: int = 12, seed: int = 0):  # noqa: ANN202
    """Well-separated probabilities, and ``flips`` cases the model is sure of (confident
    learning's target: a flip the model is unsure of is not evidence) labelled the other way."""
    rng = np.random.default_rng(seed)
    truth = rng.random(n) < 0.3
    p = np.where(truth, rng.uniform(0.75, 0.99, n), rng.uniform(0.01, 0.25, n))
    labels = truth.astype(int)
    flipped = rng.choice(n, flips, replace=False)
    labels[flipped] = 1 - labels[flipped]
    p[flipped] = np.where(truth[flipped], 0.98, 0.02)
    return labels, p, set(flipped.tolist())


def test_finds_the_flipped_labels_and_nothing_else() -> None:
    labels, p, flipped = _noisy()
    flags = find_label_issues(labels, p)
    assert {f.index for f in flags} == flipped
    assert all(f.suggested == 1 - f.given for f in flags)
    confidences = [f.self_confidence for f in flags]
    assert confidences == sorted(confidences)


def test_multiclass_and_clean_labels() -> None:
    probs = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.85, 0.1, 0.05]])
    assert find_label_issues([0, 1, 2, 0], probs) == []
    (flag,) = find_label_issues([0, 1, 2, 2], probs)
    assert (flag.index, flag.given, flag.suggested) == (3, 2, 0)


def test_flagged_items_go_to_a_second_reviewer(db) -> None:
    labels, p, flipped = _noisy(n=120, flips=4, seed=1)
    with session_scope() as session:
        for i, (label, score) in enumerate(zip(labels, p, strict=True)):
            item = store.enqueue(
                session,
                tenant="default",
                domain="finance",
                model="m",
                subject=f"t{i}",
                priority=0.0,
                score=float(score),
            )
            store.annotate(session, item, "fraud" if label else "genuine", labeller="ana")
    with session_scope() as session:
        flagged = flag_label_issues(session, domain="finance", model="m", positive="fraud")
        assert {int(item.subject[1:]) for item in flagged} == flipped
        assert all(item.second_review and item.status == "pending" for item in flagged)
        assert all("likely label issue" in (item.reason or "") for item in flagged)
    with session_scope() as session:
        # the first labeller does not see them again; someone else does, first of all
        assert store.queue(session, tenant="default", domain="finance", person="ana") == []
        queued = store.queue(session, tenant="default", domain="finance", person="bob")
        assert {int(i.subject[1:]) for i in queued} == flipped
        # running the scan again flags nothing new
        assert flag_label_issues(session, domain="finance", model="m", positive="fraud") == []


def test_too_few_labels_flag_nothing(db) -> None:
    with session_scope() as session:
        item = store.enqueue(
            session,
            tenant="default",
            domain="finance",
            model="m",
            subject="t",
            priority=0,
            score=0.99,
        )
        store.annotate(session, item, "genuine", labeller="ana")
        assert flag_label_issues(session, domain="finance", model="m", positive="fraud") == []
