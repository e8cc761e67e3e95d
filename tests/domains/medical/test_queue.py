"""Where a study goes in the clinicians' review queue."""

from __future__ import annotations

from verticals.domains.medical.queue import review_priority


def test_out_of_scope_first_then_the_least_certain() -> None:
    unsure, _ = review_priority(0.52, 0.5, in_scope=True, ood_score=0.1)
    sure, _ = review_priority(0.99, 0.5, in_scope=True, ood_score=0.1)
    odd, why = review_priority(0.99, 0.5, in_scope=False, ood_score=7.5)
    assert odd > unsure > sure
    assert why.startswith("outside what the model was trained on (out-of-distribution score 7.50)")


def test_task_labels_put_the_positive_label_first() -> None:
    from verticals.domains.medical.queue import task_labels

    assert task_labels()["pneumonia"] == ("pneumonia", "normal")
