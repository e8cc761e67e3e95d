"""The annotation store: queueing, assignment, agreement among labellers, second reviews."""

from __future__ import annotations

import pytest
from verticals.core.db import session_scope
from verticals.core.errors import Conflict
from verticals.core.labeling import store


def _queue(session, subject: str, priority: float, **extra):  # noqa: ANN001, ANN202
    return store.enqueue(
        session,
        tenant=extra.pop("tenant", "default"),
        domain="finance",
        model="m",
        subject=subject,
        priority=priority,
        **extra,
    )


def test_queue_orders_by_priority_and_requeueing_only_raises_it(db) -> None:
    with session_scope() as session:
        _queue(session, "a", 1.0, reason="low")
        _queue(session, "b", 5.0, reason="high")
        _queue(session, "a", 0.5, reason="lower: ignored")
        _queue(session, "c", 3.0, tenant="other")
    with session_scope() as session:
        order = store.queue(session, tenant="default", domain="finance")
        assert [(i.subject, i.reason) for i in order] == [("b", "high"), ("a", "low")]
        _queue(session, "a", 9.0, reason="now urgent")
    with session_scope() as session:
        order = store.queue(session, tenant="default", domain="finance")
        assert [i.subject for i in order] == ["a", "b"]
        assert store.counts(session, tenant="default", domain="finance")["pending"] == 2


def test_accepted_label_is_the_majority_ties_to_the_newest(db) -> None:
    with session_scope() as session:
        item = _queue(session, "t1", 1.0, score=0.7)
        store.annotate(session, item, "fraud", labeller="ana")
        assert (item.label, item.agreement, item.status) == ("fraud", 1.0, "labelled")
        store.annotate(session, item, "genuine", labeller="bob")
        assert (item.label, item.agreement) == ("genuine", 0.5)  # a tie: the newest
        store.annotate(session, item, "fraud", labeller="cy")
        assert (item.label, item.annotations) == ("fraud", 3)
        assert item.agreement == pytest.approx(2 / 3)
    with session_scope() as session:
        (accepted,) = store.accepted_labels(session, domain="finance", model="m")
        assert (accepted.subject, accepted.label, accepted.score) == ("t1", "fraud", 0.7)
        assert store.queue(session, tenant="default", domain="finance") == []


def test_assignment_is_exclusive(db) -> None:
    with session_scope() as session:
        item = _queue(session, "t1", 1.0)
        store.assign(session, item, "ana")
        store.assign(session, item, "ana")  # again: fine
        with pytest.raises(Conflict, match="assigned to someone else"):
            store.assign(session, item, "bob")
        assert store.queue(session, tenant="default", domain="finance", person="bob") == []
        store.annotate(session, item, "fraud", labeller="ana")
        with pytest.raises(Conflict, match="not open"):
            store.assign(session, item, "bob")


def test_second_review_waits_for_another_person(db) -> None:
    with session_scope() as session:
        item = _queue(session, "t1", 1.0)
        store.annotate(session, item, "fraud", labeller="ana")
        item.second_review, item.status = True, "pending"  # as a label-issue flag does
        assert store.queue(session, tenant="default", domain="finance", person="ana") == []
        assert store.queue(session, tenant="default", domain="finance", person="bob") == [item]
        store.annotate(session, item, "fraud", labeller="ana")  # the same person again
        assert item.status == "pending"
        store.annotate(session, item, "genuine", labeller="bob")
        assert item.status == "labelled" and item.label == "genuine"
