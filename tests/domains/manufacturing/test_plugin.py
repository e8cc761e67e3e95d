"""The domain through its entry point: discovered, shipped models registered once and loaded
checked, demo traffic that the API accepts (twice)."""

from __future__ import annotations

import pytest


def test_plugin_is_discovered_with_its_verbs(plugins) -> None:
    from verticals.domains.manufacturing.plugin import ManufacturingDomain

    domain = plugins.get("manufacturing")
    assert isinstance(domain, ManufacturingDomain)
    assert set(domain.commands()) == {"train", "evaluate", "score", "bench", "ingest"}
    assert (domain.migrations_dir() / "manufacturing_0001.py").is_file()
    assert domain.status().ready is False  # nothing loaded before setup()


def test_shipped_bundles_register_once_and_load_checked(db, plugins) -> None:
    from verticals.core.db import session_scope
    from verticals.core.registry import list_derived, list_versions
    from verticals.domains.manufacturing.model.shipping import MODELS

    domain = plugins.get("manufacturing")
    versions = domain.ensure_production_model()
    assert domain.ensure_production_model() == versions
    with session_scope() as session:
        entries = list_versions(session, domain="manufacturing")
        assert sorted(e.name for e in entries) == sorted(MODELS)
        assert all(e.stage == "production" and list_derived(session, e) for e in entries)
    domain.setup()
    try:
        status = domain.status()
        assert status.ready and "rul" in status.model_version and "failure" in status.model_version
    finally:
        domain.close()


def test_a_tampered_shipped_file_is_never_served(db, plugins, tmp_path, monkeypatch) -> None:
    import shutil

    from verticals.core.errors import IntegrityError
    from verticals.domains.manufacturing.model import shipping

    copy = tmp_path / "shipped"
    shutil.copytree(shipping.SHIPPED_DIR, copy)
    profile = next((copy / "rul").glob("rul.profile.*"))
    profile.write_bytes(profile.read_bytes().replace(b"0", b"1", 1))
    monkeypatch.setattr(shipping, "SHIPPED_DIR", copy)
    with pytest.raises(IntegrityError):
        plugins.get("manufacturing").ensure_production_model()


def test_demo_requests_are_accepted_and_idempotent(client, make_key) -> None:
    from verticals.domains.manufacturing.plugin import ManufacturingDomain

    domain_requests = ManufacturingDomain().demo_requests()
    headers = {"Authorization": f"Bearer {make_key(['manufacturing:*'])}"}
    for _ in range(2):
        for request in domain_requests:
            answer = client.request(
                request.method,
                f"/v1/manufacturing{request.path}",
                json=request.json,
                files=request.files,
                headers=headers,
            )
            assert answer.status_code < 300, (request.path, answer.text)
    fleet = client.get("/v1/manufacturing/fleet", headers=headers).json()
    kinds = {a["kind"] for a in fleet["assets"]}
    assert fleet["total"] == 20 and kinds == {"turbofan", "machine_tool"}
    assert {a["decision"] for a in fleet["assets"] if a["kind"] == "machine_tool"} >= {"stop", "ok"}
