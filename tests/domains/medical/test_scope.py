"""Input–task fit and the decision: a label only for inputs within the model's scope."""

from __future__ import annotations

from verticals.domains.medical.model.tasks import TASKS
from verticals.domains.medical.scope import INDETERMINATE, decide, fit_warnings


def test_fit_warnings_name_what_does_not_fit():
    breast = TASKS["breast"]
    assert fit_warnings(breast, modality="US", body_part="BREAST", photometric="RGB") == []
    assert fit_warnings(breast, modality=None, body_part=None, photometric=None) == []
    warnings = fit_warnings(breast, modality="CR", body_part="CHEST", photometric="MONOCHROME2")
    assert len(warnings) == 2
    assert "modality CR does not fit task 'breast' (expects US)" in warnings[0]
    assert "CHEST" not in warnings[1] and warnings[1].startswith("body part does not fit")
    chest = fit_warnings(TASKS["pneumonia"], modality="DX", body_part=None, photometric="RGB")
    assert chest and "photometric interpretation RGB" in chest[0]
    for planted in ("Doe^Jane", "JANE DOE", "SMITH"):  # valid CS, but not a defined term
        odd = fit_warnings(TASKS["pneumonia"], modality=planted, body_part=planted,
                           photometric=planted)
        assert len(odd) == 3 and not any(planted.upper() in w.upper() for w in odd)


def test_decision_follows_threshold_and_scope():
    spec = TASKS["breast"]
    inside = decide(spec, 0.40, 0.32, fit=[], ood_score=0.7)
    assert (inside.finding, inside.predicted_label, inside.in_scope) == ("malignant",) * 2 + (True,)
    below = decide(spec, 0.30, 0.32, fit=[], ood_score=0.7)
    assert below.finding == "normal_or_benign"
    far = decide(spec, 0.99, 0.32, fit=[], ood_score=1.8)
    assert far.finding == INDETERMINATE and far.predicted_label == "malignant"
    assert "1.80x the calibrated cut" in far.warnings[0]
    misfit = decide(spec, 0.99, 0.32, fit=["modality CR does not fit"], ood_score=0.2)
    assert misfit.finding == INDETERMINATE and misfit.warnings == ["modality CR does not fit"]
    unprofiled = decide(spec, 0.99, 0.32, fit=[], ood_score=None)
    assert unprofiled.finding == "malignant" and "no out-of-distribution profile" in (
        unprofiled.warnings[0]
    )
