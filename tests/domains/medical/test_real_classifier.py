"""The pipeline against the real ``model.Classifier`` (an untrained network: shapes, not skill)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


@pytest.fixture
def real_models(monkeypatch, tmp_path):
    from safetensors.torch import save_file
    from verticals.domains.medical import model_api
    from verticals.domains.medical.model import TASKS
    from verticals.domains.medical.model.artifacts import ModelExtra
    from verticals.domains.medical.model.inference import Classifier
    from verticals.domains.medical.model.networks import NetworkSpec, build_network

    torch.manual_seed(0)
    classifiers = {}
    for task in TASKS:
        spec = NetworkSpec()
        path = tmp_path / f"{task}.safetensors"
        save_file({k: v.contiguous() for k, v in build_network(spec).state_dict().items()}, path)
        extra = ModelExtra(task=task, network=spec, threshold=0.5)
        classifiers[task] = Classifier(extra, path, f"{task}-untrained")
    monkeypatch.setattr(model_api, "load_classifier", lambda task: classifiers[task])
    monkeypatch.setattr(
        model_api,
        "ensure_production_models",
        lambda: {t: c.version for t, c in classifiers.items()},
    )
    return classifiers


def test_demo_samples_through_the_real_classifier(real_models, client, make_key):
    from verticals.domains.medical.plugin import MedicalDomain

    headers = {"Authorization": f"Bearer {make_key(['medical:*'])}"}
    demo = MedicalDomain().demo_data()
    for path in sorted(demo.rglob("*.dcm")):
        r = client.post(
            "/v1/medical/studies", files={"file": (path.name, path.read_bytes())}, headers=headers
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["task"] == path.parent.name
        assert body["model_version"] == f"{body['task']}-untrained"
        assert sum(f["probability"] for f in body["findings"]) == pytest.approx(1.0, abs=1e-5)
        heatmap = client.get(body["heatmap_url"], headers=headers)
        assert heatmap.status_code == 200 and heatmap.content.startswith(b"\x89PNG")
