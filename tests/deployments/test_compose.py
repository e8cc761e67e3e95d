"""The compose stack: valid against the compose specification's JSON schema, and wired as
documented (migrations gate the APIs, the proxy and Prometheus reach both replicas, every file it
mounts exists).

The schema is compose-spec/compose-spec's schema/compose-spec.json (JSON Schema draft 2020-12) as
vendored, with its licence, in check-jsonschema 0.39.0 (a pinned dev dependency), at
check_jsonschema/builtin_schemas/vendor/compose-spec.json — read from the installed package, no
network. check-jsonschema refreshes its vendored schemas from upstream on each release: bumping its
pin in pyproject.toml is how this check follows the specification.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML comes with the dev extra (make install)")
jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deployments" / "docker" / "compose.yaml"


def compose_schema() -> dict[str, Any]:
    try:
        vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    except ModuleNotFoundError:
        pytest.fail("check-jsonschema is missing: it comes with the dev extra (make install)")
    return json.loads((vendor / "compose-spec.json").read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _errors(document: dict[str, Any]) -> list[str]:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def test_the_schema_is_the_compose_specification() -> None:
    schema = compose_schema()
    assert schema["title"] == "Compose Specification"
    assert schema["$schema"].startswith("https://json-schema.org/draft/2020-12")


def test_compose_file_is_valid_against_the_specification(compose: dict[str, Any]) -> None:
    errors = _errors(compose)
    assert not errors, "\n".join(errors)


def test_the_schema_check_does_catch_a_mistake(compose: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(compose))
    broken["services"]["api-1"]["depends_on"]["migrate"]["condition"] = "service_finished"
    broken["services"]["redis"]["healthcheck"]["intervall"] = "5s"
    assert len(_errors(broken)) >= 2


def test_the_stack_has_every_service(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) >= {
        "postgres",
        "redis",
        "migrate",
        "api-1",
        "api-2",
        "proxy",
        "dashboard",
        "prometheus",
        "grafana",
    }


def test_migrations_gate_the_apis_and_the_dashboard(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["verticals", "db", "upgrade"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api-1", "api-2", "dashboard"):
        condition = services[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully", name
    for name in ("api-1", "api-2"):
        assert services[name]["command"][:2] == ["verticals", "serve"]
        assert "/readyz" in " ".join(services[name]["healthcheck"]["test"])


def test_proxy_and_prometheus_reach_both_replicas(compose: dict[str, Any]) -> None:
    nginx = (ROOT / "deployments" / "docker" / "nginx.conf").read_text()
    assert set(re.findall(r"server\s+(api-\d):8000", nginx)) == {"api-1", "api-2"}
    prometheus = yaml.safe_load(
        (ROOT / "deployments" / "prometheus" / "prometheus.yml").read_text()
    )
    (job,) = [j for j in prometheus["scrape_configs"] if j["job_name"] == "verticals-api"]
    targets = {t for c in job["static_configs"] for t in c["targets"]}
    assert targets == {"api-1:8000", "api-2:8000"}
    assert set(compose["services"]) >= {t.split(":")[0] for t in targets}


def test_every_mounted_file_exists(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name}: {source}"


def test_metrics_are_open_to_prometheus_but_not_through_the_proxy(compose: dict[str, Any]) -> None:
    for name in ("api-1", "api-2"):
        assert compose["services"][name]["environment"]["VERTICALS_METRICS_PUBLIC"] == "true"
        assert "VERTICALS_DATABASE_URL" in compose["services"][name]["environment"]
    nginx = (ROOT / "deployments" / "docker" / "nginx.conf").read_text()
    assert re.search(r"location = /metrics \{ return 404; \}", nginx)
