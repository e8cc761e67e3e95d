"""The measured defect: an edited ONNX graph was served with /readyz 200.

A graph whose final bias was set to -20 turned a 0.78 pneumonia probability into 0.0 under
model_version "0.1.0". Now the edited graph fails its sha256 check: the model is unavailable
(503 for studies, /readyz 503 naming medical/pneumonia and why) and the other task still serves.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from verticals.core.db import session_scope
from verticals.core.registry import derived_artifact, production_version

onnx = pytest.importorskip("onnx")


def _upload(client, headers, data: bytes):
    files = {"file": ("image.dcm", data, "application/octet-stream")}
    return client.post("/v1/medical/studies", files=files, headers=headers)


def _set_final_bias(path, value: float) -> None:
    """Edit the graph as an attacker (or a bad copy) would: the classifier head's bias."""
    model = onnx.load(str(path))
    gemm = [n for n in model.graph.node if n.op_type == "Gemm"][-1]
    bias = next(i for i in model.graph.initializer if i.name == gemm.input[2])
    array = onnx.numpy_helper.to_array(bias)
    bias.CopyFrom(onnx.numpy_helper.from_array(np.full_like(array, value), bias.name))
    onnx.save(model, str(path))


def _onnx_path(task: str):
    from pathlib import Path

    with session_scope() as session:
        version = production_version(session, "medical", task)
        return Path(derived_artifact(session, version, "onnx").path)


def _probability(response) -> float:
    return {f["label"]: f["probability"] for f in response.json()["findings"]}["pneumonia"]


def _medical_status(client) -> tuple[int, dict]:
    ready = client.get("/readyz")
    return ready.status_code, ready.json()["domains"]["medical"]


def test_edited_onnx_graph_makes_the_model_unavailable(client, make_key, dicom_factory, caplog):
    from fastapi.testclient import TestClient
    from verticals.apps.api import create_app

    headers = {"Authorization": f"Bearer {make_key(['medical:*'])}"}
    pneumonia = dicom_factory()  # CR + CHEST
    breast = dicom_factory(modality="US", body_part="BREAST", bits=8)

    served = _upload(client, headers, pneumonia)  # served once: exported and registered
    assert served.status_code == 201, served.text
    assert _medical_status(client)[0] == 200
    path = _onnx_path("pneumonia")
    _set_final_bias(path, -20.0)
    edited = path.read_bytes()

    domain = client.app.state.plugins.domains["medical"]
    domain.engine().reload()  # what a restart or a model reload does
    with caplog.at_level("ERROR"):
        refused = _upload(client, headers, pneumonia)
    assert refused.status_code == 503, refused.text
    error = refused.json()["error"]
    assert error["code"] == "model_unavailable"
    assert "medical/pneumonia" in error["message"] and "integrity" in error["message"]
    assert str(path) not in refused.text  # no server paths to clients
    assert "integrity failure" in caplog.text

    code, status = _medical_status(client)
    assert code == 503 and status["ready"] is False
    assert "unavailable: medical/pneumonia" in status["detail"]
    assert "integrity" in status["detail"]
    assert _upload(client, headers, breast).status_code == 201  # the other task still serves
    assert path.read_bytes() == edited  # not silently re-exported over

    # a restart with the edited graph on disk: still refused, still named
    with TestClient(create_app(), raise_server_exceptions=False) as restarted:
        assert _upload(restarted, headers, pneumonia).status_code == 503
        code, status = _medical_status(restarted)
        assert code == 503 and "unavailable: medical/pneumonia" in status["detail"]
        assert "medical/breast" not in status["detail"]

    # the operator's recovery: verify names it, forget-derived drops it, the graph is re-made
    # from the verified weights on the next load and serves the original probability again
    from typer.testing import CliRunner
    from verticals.apps.cli.main import build_cli

    cli = CliRunner()
    verify = cli.invoke(build_cli(), ["models", "verify", "--json"])
    assert verify.exit_code == 1
    failing = [c for c in json.loads(verify.stdout.splitlines()[-1]) if c["status"] != "ok"]
    version = served.json()["model_version"]
    assert [(c["model"], c["kind"]) for c in failing] == [(f"medical/pneumonia:{version}", "onnx")]
    forget = ["models", "forget-derived", "medical/pneumonia", version, "onnx", "--delete-file"]
    assert cli.invoke(build_cli(), forget).exit_code == 0
    domain.engine().graph_retry_s = 0.0  # no need to wait out the retry pause
    again = _upload(client, headers, pneumonia)
    assert again.status_code == 201, again.text
    assert _probability(again) == pytest.approx(_probability(served), abs=1e-5)
    assert _medical_status(client)[0] == 200
