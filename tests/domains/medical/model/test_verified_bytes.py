"""What is checked is what is loaded: weights swapped after their sha256 check are never served
nor registered; the classifier's network keeps no Grad-CAM hooks; the OOD copy is made at load."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load, save
from verticals.core.db import session_scope
from verticals.core.errors import IntegrityError
from verticals.core.registry import list_versions
from verticals.domains.medical.model import artifacts
from verticals.domains.medical.model.artifacts import shipped_model
from verticals.domains.medical.model.production import (
    ensure_production_models,
    load_classifier,
    shipped_classifier,
)

TASK = "pneumonia"


def _other_weights(original: bytes) -> bytes:
    """Valid weights of the same network, all different from ``original``."""
    tensors = load(original)
    return save({name: torch.zeros_like(t) + 0.5 for name, t in tensors.items()})


def _assert_weights(classifier, payload: bytes) -> None:
    expected = load(payload)
    actual = classifier._net.state_dict()
    assert set(expected) <= set(actual)
    for name, tensor in expected.items():
        assert torch.equal(actual[name], tensor), name


def test_load_classifier_serves_the_bytes_it_checked(swap_after_check, db, monkeypatch):
    ensure_production_models()
    with session_scope() as session:
        row = list_versions(session, "medical", TASK)[0]
    path = Path(row.artifact_path)
    genuine = path.read_bytes()
    fired = swap_after_check(
        row.sha256, lambda: path.write_bytes(_other_weights(genuine))
    )
    classifier = load_classifier(TASK)
    assert fired  # the file was swapped after its check ...
    _assert_weights(classifier, genuine)  # ... and the checked weights are the ones served


def test_shipped_classifier_serves_the_bytes_it_checked(swap_after_check, monkeypatch, tmp_path):
    shipped_copy = tmp_path / "shipped"
    shutil.copytree(artifacts.shipped_dir(), shipped_copy)
    monkeypatch.setattr(artifacts, "shipped_dir", lambda: shipped_copy)
    shipped, weights = shipped_model(TASK)
    genuine = weights.read_bytes()
    fired = swap_after_check(
        shipped.files["weights"].sha256, lambda: weights.write_bytes(_other_weights(genuine))
    )
    try:
        classifier = shipped_classifier(TASK)
    except IntegrityError:  # swapped between two checks: refused, which is also safe
        assert fired
        return
    assert fired
    _assert_weights(classifier, genuine)


def test_registration_never_trusts_a_source_swapped_after_its_check(
    swap_after_check, db, monkeypatch, tmp_path
):
    shipped_copy = tmp_path / "shipped"
    shutil.copytree(artifacts.shipped_dir(), shipped_copy)
    monkeypatch.setattr(artifacts, "shipped_dir", lambda: shipped_copy)
    shipped, weights = shipped_model(TASK)
    genuine = weights.read_bytes()
    fired = swap_after_check(
        shipped.files["weights"].sha256,
        lambda: weights.write_bytes(_other_weights(genuine)),
        restore=lambda: weights.write_bytes(genuine),
    )
    with contextlib.suppress(IntegrityError):  # refusing is safe; trusting the swap is not
        ensure_production_models()
    assert fired
    with session_scope() as session:
        rows = list_versions(session, "medical", TASK)
    for row in rows:  # whatever got registered is the genuine, checked content
        assert row.sha256 == shipped.files["weights"].sha256
        assert Path(row.artifact_path).read_bytes() == genuine


def _hooks(module: torch.nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._backward_hooks) + len(m._forward_pre_hooks)
        for m in module.modules()
    )


def test_gradcam_leaves_the_served_network_without_hooks():
    classifier = shipped_classifier(TASK)
    image = np.random.default_rng(3).random((1, 28, 28)).astype(np.float32)
    before = _hooks(classifier._net)
    first = classifier.gradcam(image)
    for _ in range(10):
        np.testing.assert_array_equal(classifier.gradcam(image), first)
    assert _hooks(classifier._net) == before == 0
    np.testing.assert_allclose(
        classifier.predict(image[None]), shipped_classifier(TASK).predict(image[None]), atol=1e-6
    )


def test_ood_network_is_a_private_copy_made_at_load():
    classifier = shipped_classifier(TASK)
    assert classifier.ood is not None
    ood_net = classifier._ood_net  # made by __init__, before any score or Grad-CAM is asked
    assert ood_net is not None and ood_net is not classifier._net
    shared = {id(p) for p in classifier._net.parameters()}
    assert not any(id(p) in shared for p in ood_net.parameters())
    image = np.random.default_rng(4).random((1, 28, 28)).astype(np.float32)
    classifier.gradcam(image)
    score = classifier.ood_score(image)
    assert classifier._ood_net is ood_net and _hooks(ood_net) == 0
    assert score == pytest.approx(shipped_classifier(TASK).ood_score(image), rel=1e-6)
