from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from verticals.core.db import session_scope
from verticals.core.errors import IntegrityError
from verticals.core.monitoring.drift import compare, drifted_features
from verticals.core.monitoring.profile import (
    REFERENCE_KIND,
    build_profile,
    load_reference,
    numeric_sketch,
)
from verticals.core.monitoring.service import ensure_reference, report_for
from verticals.core.registry.derived import derived_artifact
from verticals.core.registry.store import production_version


def test_numeric_sketch_of_a_known_distribution() -> None:
    sketch = numeric_sketch(np.arange(1, 1001, dtype=float))
    assert sketch.count == 1000 and sketch.mean == pytest.approx(500.5)
    assert sketch.quantiles[49] == pytest.approx(500.5)  # the median
    assert sketch.shares == pytest.approx([0.1] * 10)
    assert sum(sketch.hist_shares) == pytest.approx(1.0)


def test_profile_is_registered_with_its_sha256_and_loaded_only_verified(synth) -> None:
    watched = synth.get("synth").monitoring().models[0]
    with session_scope() as session:
        version, profile = ensure_reference(session, "synth", watched)
        found = derived_artifact(session, version, REFERENCE_KIND)
    assert found is not None and Path(found.path).is_file()
    assert set(profile.features) == {"x", "colour", "emb"}
    assert profile.features["colour"].shares["red"] == pytest.approx(0.7, abs=0.02)
    Path(found.path).write_text(Path(found.path).read_text().replace('"count"', '"count" '))
    with session_scope() as session, pytest.raises(IntegrityError):
        load_reference(session, production_version(session, "synth", "m"))


def test_stable_window_is_not_drifted_and_shifts_are(synth, feed) -> None:
    watched = synth.get("synth").monitoring().models[0]
    feed.send(50)
    assert report_for(synth, "synth").status == "insufficient"
    for _ in range(20):  # many windows of the reference distribution: never drifted
        feed.send(250)
        report = report_for(synth, "synth")
        assert report.status == "ok", [f for f in report.features if f.drifted]
    feed.send(500, shift=1.0, colours=(0.3, 0.7))
    report = report_for(synth, "synth")
    assert report.drifted == ["x", "colour", "emb"]
    stats = {f.statistic for f in report.features}
    assert stats == {"psi", "ks", "wasserstein", "js", "chi2_p", "mmd", "mahalanobis"}
    assert report.window.count == watched.window.max_count


def test_compare_names_only_the_drifted_feature(synth) -> None:
    rng = np.random.default_rng(3)
    watched = synth.get("synth").monitoring().models[0]
    reference = {"x": rng.normal(size=5000), "colour": np.array(["a"] * 5000)}
    profile = build_profile(reference, watched.features[:2], domain="d", model="m", version="1")
    from verticals.core.monitoring.spec import Window

    window = Window(
        columns={"x": rng.normal(size=800) * 3, "colour": np.array(["a"] * 800)}, count=800
    )
    rows = compare(profile, window, watched)
    assert drifted_features(rows) == ["x"]
