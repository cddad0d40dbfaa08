"""deploy/prometheus/rules.yml and deploy/grafana/frontline-voc.json: their structure, `promtool
check rules` when promtool is installed, and every metric they name exported by the services
(a real scrape of the running system); docs/OPERATIONS.md lists every metric exported."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import RunningSystem
from tests.deploy.kustomize import render
from tests.support.metrics import Scrape
from tests.support.system import post_feedback, wait_for
from voc_cli.supervisor import SERVICES

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "frontline-voc.json"
OPERATIONS = ROOT / "docs" / "OPERATIONS.md"
METRIC = re.compile(r"\b((?:voc|process)_[a-z0-9_]+)\b")
DURATION = re.compile(r"^\d+[smhd]$")
#: What the issue asks the rules to cover, by the metric each alert reads.
REQUIRED = {
    "consumer lag": "voc_consumer_pending_messages",
    "DLQ growth": "voc_dlq_messages",
    "outbox age": "voc_outbox_oldest_pending_age_seconds",
    "push failure ratio": "voc_push_deliveries_total",
    "no intake": "voc_feedback_accepted_total",
}


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    assert set(document) == {"groups"}
    found = []
    names = set()
    for group in document["groups"]:
        assert set(group) == {"name", "rules"} and group["name"] not in names, group.get("name")
        names.add(group["name"])
        found.extend(group["rules"])
    return found


def dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return document


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]


def test_alert_rules_structure() -> None:
    found = rules()
    alerts = [rule["alert"] for rule in found]
    assert len(alerts) == len(set(alerts))
    for rule in found:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert re.fullmatch(r"Voc[A-Z][A-Za-z]+", rule["alert"]), rule["alert"]
        assert isinstance(rule["expr"], str) and METRIC.search(rule["expr"]), rule["alert"]
        assert DURATION.match(rule.get("for", "0s")), rule["alert"]
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
    for what, metric in REQUIRED.items():
        assert any(metric in rule["expr"] for rule in found), f"no alert on {what} ({metric})"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_rules() -> None:
    promtool = shutil.which("promtool")
    assert promtool is not None
    result = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_parses_the_dashboard_queries(tmp_path: Path) -> None:
    """Each panel query as a recording rule (Grafana's `$__rate_interval` as 5m): promtool parses
    every expression."""
    promtool = shutil.which("promtool")
    assert promtool is not None
    records = [
        {"record": f"voc:dashboard:query_{n}", "expr": expr.replace("$__rate_interval", "5m")}
        for n, expr in enumerate(dashboard_exprs())
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_structure() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 30
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert (
        variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    )
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["w"] >= 1 and grid["x"] + grid["w"] <= 24 and grid["h"] >= 1, panel["title"]
        assert panel["title"], panel
        if panel["type"] == "row":
            continue
        assert panel["type"] in {"timeseries", "stat", "gauge", "heatmap", "table"}, panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert METRIC.search(target["expr"]), (panel["title"], target["expr"])
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]


def exported(running_system: RunningSystem) -> set[str]:
    """Sample names of a real scrape of the four services, once one feedback made its alert
    (so the per-subject, per-consumer and per-method series exist)."""
    answer = post_feedback(
        running_system,
        {
            "store_id": "store-gangnam",
            "channel": "app",
            "text": "주문한 음료가 30분째 안 나와요",
            "customer": {"loyalty_id": f"L-OBS-{uuid.uuid4().hex[:8]}"},
        },
    )
    assert answer.status_code == 202, answer.text

    def alerted() -> set[str] | None:
        scrapes = [Scrape.of(running_system.url(name)) for name in SERVICES]
        notify = scrapes[SERVICES.index("notify")]
        if not notify.value("voc_events_consumed_total", consumer="notify-alerts"):
            return None
        return set().union(*(s.names() for s in scrapes))

    return wait_for(alerted)


def test_dashboard_and_rules_name_only_exported_metrics(running_system: RunningSystem) -> None:
    names = exported(running_system)
    for source, exprs in (
        ("dashboard", dashboard_exprs()),
        ("rules", [rule["expr"] for rule in rules()]),
    ):
        for expr in exprs:
            for metric in METRIC.findall(expr):
                assert metric in names, f"{source}: {metric} is not exported ({expr})"


def test_operations_guide_lists_every_metric(running_system: RunningSystem) -> None:
    names = exported(running_system)
    families = {re.sub(r"_(bucket|count|sum)$", "", n) for n in names if n.startswith("voc_")}
    guide = OPERATIONS.read_text()
    missing = sorted(f for f in families if f"`{f}`" not in guide)
    assert not missing, f"docs/OPERATIONS.md does not list {missing}"


@pytest.mark.parametrize("overlay", ["base", "overlays/production"])
def test_pods_announce_their_metrics_port(overlay: str) -> None:
    """Annotation-based Prometheus setups find each service's /metrics on its HTTP port."""
    deployments = {
        o["metadata"]["name"]: o
        for o in render(ROOT / "deploy" / "k8s" / overlay)
        if o["kind"] == "Deployment"
    }
    for service in SERVICES:
        template = deployments[service]["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        http = next(p for p in template["spec"]["containers"][0]["ports"] if p["name"] == "http")
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/path"] == "/metrics"
        assert annotations["prometheus.io/port"] == str(http["containerPort"])
