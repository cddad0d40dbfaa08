"""The manager console behind the shipped ingress (#20): in the kustomize base and overlays and in
the Helm chart (default values, production values, another intake host), `/dashboard`, its assets
and config.json reach feedback; every call the console's scripts make reaches the service they
name at the URL the console is configured with (feedback's VOC_NOTIFY_PUBLIC_URL and
VOC_ACTIONS_PUBLIC_URL, which config.json hands to the page); and the services the console calls
from another origin list the console's origin in VOC_CONSOLE_ORIGINS. Paths are matched the way
Kubernetes matches an Ingress (Exact, Prefix by path element, the longest match winning)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.deploy import test_helm as charts
from tests.deploy import test_manifests as manifests
from tests.deploy.kustomize import render
from voc_feedback.routes.dashboard import DASHBOARD_ASSETS
from voc_platform.http import content_security_policy, origin_of

Object = dict[str, Any]
CONSOLE = manifests.ROOT / "services" / "feedback" / "src" / "voc_feedback" / "dashboard"
# session.api, and the wrappers around it: admin.js's request() and its post() helper.
CALL = re.compile(r"""(?:session\.api|request|post)\("(feedback|notify|actions)",\s*(`[^`]*`|"[^"]*")""")


def console_calls() -> set[tuple[str, str]]:
    """(service, path) of every call written in the console's scripts (a `${…}` part as `x`),
    and the board's analytics, which dashboard.js builds from a variable."""
    found = set()
    for script in CONSOLE.glob("*.js"):
        for service, literal in CALL.findall(script.read_text()):
            path = re.sub(r"\$\{[^}]*\}", "x", literal[1:-1]).split("?")[0]
            found.add((service, path))
    board = ("/v1/analytics", "/v1/analytics/open-cases", "/v1/analytics/targets", "/v1/analytics/outreach")
    return found | {("feedback", p) for p in board}


def backend(ingress: Object, host: str, path: str) -> str | None:
    """The Service an Ingress sends `host` + `path` to, as Kubernetes matches: Exact by the
    whole path, Prefix by path elements; the longest path wins, Exact before Prefix."""
    best: tuple[int, int, str] | None = None
    for rule in ingress["spec"]["rules"]:
        if rule.get("host") != host:
            continue
        for p in rule["http"]["paths"]:
            want = p["path"]
            if p["pathType"] == "Exact":
                hit = path == want
            else:
                stem = want.rstrip("/")
                hit = stem == "" or path == stem or path.startswith(stem + "/")
            if hit:
                rank = (
                    len(want.rstrip("/")),
                    1 if p["pathType"] == "Exact" else 0,
                    p["backend"]["service"]["name"],
                )
                best = max(best, rank) if best else rank
    return best[2] if best else None


def container_env(objects: list[Object], service: str) -> dict[str, str]:
    """What the service's container reads: its ConfigMaps (envFrom), its values and
    configMapKeyRefs resolved."""
    configs = {o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"}
    deployment = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == service)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(configs[source["configMapRef"]["name"]])
    for entry in container.get("env", []):
        ref = entry.get("valueFrom", {}).get("configMapKeyRef")
        if ref:
            env[entry["name"]] = configs[ref["name"]][ref["key"]]
        elif "value" in entry:
            env[entry["name"]] = entry["value"]
    return env


def check_console(objects: list[Object]) -> str:
    """Every promise of the module docstring for one rendered set; the console's origin."""
    (ingress,) = (o for o in objects if o["kind"] == "Ingress")
    feedback = container_env(objects, "feedback")
    intake = next(
        r["host"] for r in ingress["spec"]["rules"] if any(p["path"] == "/f/" for p in r["http"]["paths"])
    )
    console = f"https://{intake}"
    for path in (
        "/dashboard",
        "/dashboard/config.json",
        *(f"/dashboard/assets/{a}" for a in DASHBOARD_ASSETS),
    ):
        assert backend(ingress, intake, path) == "feedback", path
    bases = {
        "feedback": console,
        "notify": feedback.get("VOC_NOTIFY_PUBLIC_URL") or console,
        "actions": feedback.get("VOC_ACTIONS_PUBLIC_URL") or console,
    }
    calls = console_calls()
    assert {s for s, _ in calls} == {"feedback", "notify", "actions"} and len(calls) > 20
    for service, path in sorted(calls):
        base = urlsplit(bases[service])
        assert base.scheme == "https", (service, bases[service])
        assert backend(ingress, base.hostname or "", base.path.rstrip("/") + path) == service, (service, path)
    # The console's page may connect there (CSP), and whoever it calls from another origin lets it.
    policy = content_security_policy([bases["notify"], bases["actions"]])
    for service in ("notify", "actions"):
        if origin_of(bases[service]) != console:
            assert origin_of(bases[service]) in policy
            origins = container_env(objects, service).get("VOC_CONSOLE_ORIGINS", "").split(",")
            assert console in [o.strip() for o in origins], service
    # Nothing internal is routed on the console's host.
    for path in ("/metrics", "/healthz", "/readyz", "/v1/plans:lookup", "/v1/audit"):
        assert backend(ingress, intake, path) in (None, "feedback"), path
    return console


@pytest.mark.parametrize("kustomization", manifests.KUSTOMIZATIONS)
def test_the_kustomize_ingress_serves_the_console_and_its_calls(kustomization: str) -> None:
    console = check_console(render(manifests.DEPLOY / "k8s" / kustomization))
    staging = kustomization.endswith("staging")
    assert console == (
        "https://intake.staging.voc.example.com" if staging else "https://intake.voc.example.com"
    )


HELM_CASES = {
    "defaults": [],
    "production": ["-f", str(charts.PRODUCTION_VALUES)],
    "own hosts": [
        "--set",
        "ingress.intake.host=voc.chain.example",
        "--set",
        "ingress.staff.host=app.chain.example",
    ],
}


@pytest.mark.skipif(charts.HELM is None, reason="helm not installed: run scripts/get-helm.sh")
@pytest.mark.parametrize("case", HELM_CASES)
def test_the_chart_ingress_serves_the_console_and_its_calls(case: str) -> None:
    objects = charts.template(*HELM_CASES[case])
    console = check_console(objects)
    if case == "own hosts":  # the settings follow the hosts: nothing to set by hand
        assert console == "https://voc.chain.example"
        assert container_env(objects, "feedback")["VOC_NOTIFY_PUBLIC_URL"] == "https://app.chain.example"


@pytest.mark.skipif(charts.HELM is None, reason="helm not installed: run scripts/get-helm.sh")
def test_the_console_routes_can_be_left_off() -> None:
    """ingress.intake.console=false: neither /dashboard nor actions' playbook API is public, and no
    service lets a console origin call it."""
    objects = charts.template("--set", "ingress.intake.console=false")
    (ingress,) = (o for o in objects if o["kind"] == "Ingress")
    for path in ("/dashboard", "/v1/playbooks", "/v1/playbooks:validate"):
        assert backend(ingress, "intake.voc.example.com", path) in (None, "feedback"), path
    assert backend(ingress, "intake.voc.example.com", "/dashboard") is None
    assert container_env(objects, "notify")["VOC_CONSOLE_ORIGINS"] == ""


def test_the_matcher_follows_kubernetes() -> None:
    ingress = {
        "spec": {
            "rules": [
                {
                    "host": "h",
                    "http": {
                        "paths": [
                            {"path": "/v1/", "pathType": "Prefix", "backend": {"service": {"name": "a"}}},
                            {
                                "path": "/v1/playbooks",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "b"}},
                            },
                            {"path": "/x", "pathType": "Exact", "backend": {"service": {"name": "c"}}},
                        ]
                    },
                }
            ]
        }
    }
    assert backend(ingress, "h", "/v1/playbooks/p/rollback") == "b"
    assert backend(ingress, "h", "/v1/playbooksx") == "a"  # Prefix matches whole elements
    assert backend(ingress, "h", "/v1/playbooks:validate") == "a"  # hence its own Exact path
    assert backend(ingress, "h", "/x/y") is None and backend(ingress, "h", "/x") == "c"
    assert backend(ingress, "other", "/v1/") is None
