"""Every metric the Prometheus rules and the Grafana dashboard query is one the API exposes.

The app runs in-process (the test client), each domain serves its demo requests (so labelled
series and prediction counters exist), and /metrics is read back; the rule expressions and the
dashboard's queries are parsed for metric names. A panel or alert on a metric that was renamed or
removed fails here instead of going silently blank in production.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML comes with the dev extra (make install)")

ROOT = Path(__file__).resolve().parents[2]
RULE_FILES = sorted((ROOT / "deployments" / "prometheus").glob("*rules*.y*ml"))
DASHBOARDS = sorted((ROOT / "deployments" / "grafana").glob("*.json"))
# Series Prometheus itself writes for every target, not the app.
SCRAPE_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "inf", "nan", "atan2",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are neither functions, aggregation
    modifiers and their label lists, keywords, label matchers, strings nor durations."""
    expr = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges, subqueries
    expr = re.sub(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr
    )  # label lists
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", expr):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in PROMQL_WORDS:
            continue
        names.add(name)
    return names


def test_metric_names_are_read_from_promql() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, route) (rate(a_seconds_bucket{route=~"x|y"}[5m])))'
        " / on(route) group_left sum without (pod) (b_total offset 5m) > bool 0.1 and up == 0"
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b_total", "up"}


def rule_expressions() -> dict[str, str]:
    exprs = {}
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                exprs[f"{path.name}: {rule.get('alert') or rule.get('record')}"] = rule["expr"]
    return exprs


def dashboard_queries() -> dict[str, str]:
    queries = {}

    def panels(items: list[dict]) -> list[dict]:
        out = []
        for panel in items:
            out.append(panel)
            out += panels(panel.get("panels", []))  # rows hold panels
        return out

    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in panels(dashboard.get("panels", [])):
            for target in panel.get("targets", []):
                if "expr" in target:
                    queries[f"{path.name}: {panel.get('title')}"] = target["expr"]
        for variable in dashboard.get("templating", {}).get("list", []):
            query = variable.get("query")
            if isinstance(query, dict):
                query = query.get("query")
            if variable.get("type") == "query" and query:
                queries[f"{path.name}: ${variable['name']}"] = query
    return queries


def test_there_are_rules_and_panels_to_check() -> None:
    assert len(rule_expressions()) >= 3
    assert len(dashboard_queries()) >= 3


def test_recording_rules_count_as_metrics_for_the_rest() -> None:
    # a record: rule's name is a series later expressions may use
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                assert "alert" in rule or "record" in rule, rule


def test_every_queried_metric_is_exposed(db, make_key, plugins) -> None:
    from fastapi.testclient import TestClient
    from prometheus_client.parser import text_string_to_metric_families
    from verticals.core.config import get_settings
    from verticals.core.serving.app import build_app

    # The app without its startup (no `with`): starting every domain loads every model (~30 s);
    # finance alone is started here, for one scored batch, so the prediction series exist too.
    app = build_app(plugins, max_request_bytes=get_settings().max_request_bytes)
    client = TestClient(app, raise_server_exceptions=False)
    finance = plugins.domains["finance"]
    finance.ensure_production_model()
    finance.setup()
    auth = {"Authorization": f"Bearer {make_key(['*'])}"}
    # a request to every domain's mount: the middleware counts it under the domain's label
    for name in plugins.domains:
        assert client.get(f"/v1/{name}/", headers=auth).status_code < 500
    (batch,) = finance.demo_requests()
    try:
        response = client.post(f"/v1/finance{batch.path}", files=batch.files, headers=auth)
        assert response.status_code == 200, response.text[:300]
        response = client.get("/metrics", headers=auth)
    finally:
        finance.close()
    response = client.get("/metrics", headers=auth)
    assert response.status_code == 200
    families = list(text_string_to_metric_families(response.text))
    exposed = {sample.name for family in families for sample in family.samples}
    # a labelled gauge set only by the monitoring evaluator (drift scores, open alerts) is
    # declared with no series yet: its name is exposed all the same
    exposed |= {family.name for family in families if family.type == "gauge"}
    # ...and so is a labelled counter nothing has counted yet (shed requests): its sample name
    exposed |= {f"{family.name}_total" for family in families if family.type == "counter"}
    assert "verticals_predictions_total" in exposed, "the batch made predictions"
    assert "verticals_http_request_seconds_bucket" in exposed
    recorded = {
        rule["record"]
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    known = exposed | recorded | SCRAPE_SERIES
    missing = {
        where: sorted(metric_names(expr) - known)
        for where, expr in {**rule_expressions(), **dashboard_queries()}.items()
        if metric_names(expr) - known
    }
    assert not missing, f"queried but not exposed by /metrics: {missing}"
    # and the check bites: a misspelt metric is not among them
    assert metric_names("rate(verticals_http_requests_totl[5m])") - known
