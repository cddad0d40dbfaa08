"""The Helm chart (deploy/helm/frontline-voc) checked with a real helm: `helm lint --strict` and
`helm template` with the default values and with a production-like values file
(ci/production-values.yaml); every rendered object validated against the Kubernetes API schema
like the kustomize output (the helpers of test_manifests.py), the defaults shown to be the same
objects as deploy/k8s/base, and what the values promise: replicas, ingress with TLS, secrets only
by reference, VOC_ENV=production. helm comes from scripts/get-helm.sh (.tools/bin/helm), $HELM or
PATH; without it these tests skip."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy import test_manifests as manifests
from tests.deploy.kustomize import render
from tests.support.certs import make_certs
from voc_cli.supervisor import SERVICES

CHART = manifests.DEPLOY / "helm" / "frontline-voc"
PRODUCTION_VALUES = CHART / "ci" / "production-values.yaml"
Object = dict[str, Any]


def helm_binary() -> str | None:
    candidates = [
        os.environ.get("HELM"),
        str(manifests.ROOT / ".tools" / "bin" / "helm"),
        shutil.which("helm"),
    ]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


HELM = helm_binary()
pytestmark = pytest.mark.skipif(
    HELM is None, reason="helm not installed: run scripts/get-helm.sh (or set HELM) for the chart tests"
)


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    assert HELM is not None
    return subprocess.run([HELM, *args], capture_output=True, text=True, timeout=120)


def template(*args: str) -> list[Object]:
    done = helm("template", "voc", str(CHART), "--namespace", "voc", *args)
    assert done.returncode == 0, done.stderr
    return [o for o in yaml.safe_load_all(done.stdout) if o]


def by_key(objects: list[Object]) -> dict[tuple[str, str], Object]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def pod_specs(objects: list[Object]) -> list[tuple[Object, Object]]:
    return [
        (o, o["spec"]["template"]["spec"])
        for o in objects
        if o["kind"] in ("Deployment", "Job", "StatefulSet")
    ]


def leaves(node: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        return [leaf for k, v in node.items() for leaf in leaves(v, f"{path}.{k}" if path else str(k))]
    if isinstance(node, list):
        return [leaf for i, v in enumerate(node) for leaf in leaves(v, f"{path}[{i}]")]
    return [(path, node)]


VALUE_SETS = {"defaults": [], "production": ["-f", str(PRODUCTION_VALUES)]}


@pytest.mark.parametrize("values", VALUE_SETS)
def test_the_chart_lints_and_every_rendered_object_validates(values: str) -> None:
    done = helm("lint", "--strict", str(CHART), *VALUE_SETS[values])
    assert done.returncode == 0, done.stdout + done.stderr
    objects = template(*VALUE_SETS[values])
    kinds = {o["kind"] for o in objects}
    assert {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "Job",
        "StatefulSet",
        "ConfigMap",
        "Ingress",
    } <= kinds
    manifests.assert_schema_valid(objects)
    assert manifests.k8s_disagreements(objects) == []


def normalised(obj: Object, configs: dict[str, dict[str, str]]) -> Object:
    """What a pod sees, independent of how it was written: ConfigMaps named by envFrom folded
    into env, named lists in name order, Helm's labels and annotations (and imagePullPolicy,
    which kustomize leaves to the cluster default) left out."""
    obj = yaml.safe_load(yaml.safe_dump(obj))

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            for key in ("labels", "annotations", "namespace", "imagePullPolicy"):
                node.pop(key, None)
            if "env" in node or "envFrom" in node:
                env = {e["name"]: e for e in node.get("env", [])}
                for source in node.pop("envFrom", []):
                    for name, value in configs[source["configMapRef"]["name"]].items():
                        env.setdefault(name, {"name": name, "value": value})
                node["env"] = env
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            items = [walk(v) for v in node]
            if all(isinstance(i, dict) and "name" in i for i in items):
                items.sort(key=lambda i: i["name"])
            return items
        return node

    result: Object = walk(obj)
    return result


def test_the_defaults_render_the_objects_of_the_kustomize_base() -> None:
    """helm template with the default values and kustomize's base make the same objects (same
    names, specs, environment, probes, volumes, NATS configuration, the ingress and its routes);
    the chart leaves the namespace to `helm --namespace` / `kubectl create namespace`."""
    chart = template()
    base = [o for o in render(manifests.DEPLOY / "k8s" / "base") if o["kind"] != "Namespace"]

    def configs(objects: list[Object]) -> dict[str, dict[str, str]]:
        return {o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"}

    ours = {k: normalised(o, configs(chart)) for k, o in by_key(chart).items()}
    theirs = {k: normalised(o, configs(base)) for k, o in by_key(base).items()}
    assert sorted(ours) == sorted(theirs)
    for key in theirs:
        assert ours[key] == theirs[key], key
    accounts = by_key(chart)[("ConfigMap", "nats-config")]["data"]["accounts.conf"]
    assert accounts == (manifests.DEPLOY / "nats" / "accounts.conf").read_text(), (
        "copy deploy/nats/accounts.conf to deploy/helm/frontline-voc/files/accounts.conf"
    )


def test_production_values_set_replicas_images_databases_and_nats_credentials() -> None:
    objects = by_key(template("-f", str(PRODUCTION_VALUES)))
    values = yaml.safe_load(PRODUCTION_VALUES.read_text())
    for service in SERVICES:
        deployment = objects[("Deployment", service)]
        scaling = values["services"][service].get("autoscaling", {})
        if scaling.get("enabled"):  # the HPA owns replicas: none in the Deployment to fight it
            assert "replicas" not in deployment["spec"]
            hpa = objects[("HorizontalPodAutoscaler", service)]["spec"]
            assert (hpa["minReplicas"], hpa["maxReplicas"]) == (
                scaling["minReplicas"],
                scaling["maxReplicas"],
            )
        else:
            assert deployment["spec"]["replicas"] == values["services"][service]["replicas"]
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == f"registry.example.com/frontline-voc/{service}:0.2.0"
        env = {e["name"]: e for e in container["env"]}
        database = env[f"VOC_{service.upper()}_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        assert database == {"name": "voc-postgres-urls", "key": service}
        nats = env["VOC_NATS_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert nats == {"name": "voc-nats-passwords", "key": f"nats-{service}-password"}
        assert env["VOC_NATS_USER"]["value"] == service
    assert objects[("Deployment", "actions")]["spec"]["replicas"] == 2
    assert objects[("Deployment", "profile")]["spec"]["replicas"] == 3
    notify = objects[("Deployment", "notify")]["spec"]["template"]["spec"]["containers"][0]
    assert notify["resources"]["limits"] == {"cpu": "2", "memory": "768Mi"}
    nodes = objects[("StatefulSet", "nats")]["spec"]["template"]["spec"]["containers"][0]
    assert {e["valueFrom"]["secretKeyRef"]["name"] for e in nodes["env"] if e["name"] != "POD_NAME"} == {
        "voc-nats-passwords"
    }
    claim = objects[("StatefulSet", "nats")]["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["storageClassName"] == "fast-ssd" and claim["resources"]["requests"]["storage"] == "50Gi"
    # --set reaches the Deployment: replicas are values, not constants.
    scaled = by_key(template("--set", "services.actions.replicas=5"))
    assert scaled[("Deployment", "actions")]["spec"]["replicas"] == 5


def test_the_ingress_serves_https_only_and_never_metrics() -> None:
    objects = by_key(template("-f", str(PRODUCTION_VALUES)))
    ingress = objects[("Ingress", "frontline-voc")]
    hosts = [rule["host"] for rule in ingress["spec"]["rules"]]
    assert hosts == ["staff.voc.example.com", "intake.voc.example.com"]
    assert ingress["spec"]["tls"] == [{"hosts": hosts, "secretName": "voc-public-tls"}]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt-production"
    routes = {
        (rule["host"], p["path"], p["pathType"], p["backend"]["service"]["name"])
        for rule in ingress["spec"]["rules"]
        for p in rule["http"]["paths"]
    }
    assert ("staff.voc.example.com", "/v1/", "Prefix", "notify") in routes
    assert ("intake.voc.example.com", "/v1/", "Prefix", "feedback") in routes
    for _, path, kind, _ in routes:  # /metrics, /healthz, /readyz stay inside the cluster
        assert kind in ("Exact", "Prefix") and not (kind == "Prefix" and path == "/"), path
        assert not path.startswith(("/metrics", "/healthz", "/readyz")), path
    # The staff app's public URL (push subscriptions, links) follows the ingress host, over HTTPS.
    notify_config = objects[("ConfigMap", "voc-notify-config")]["data"]
    assert notify_config["VOC_NOTIFY_PUBLIC_URL"] == "https://staff.voc.example.com"
    # No TLS secret, no ingress: helm refuses with a line naming the value.
    done = helm("template", "voc", str(CHART), "--set", "ingress.tls.secretName=")
    assert done.returncode != 0 and "ingress.tls.secretName" in done.stderr
    assert not any(o["kind"] == "Ingress" for o in template("--set", "ingress.enabled=false"))


@pytest.mark.parametrize("values", VALUE_SETS)
def test_no_literal_secrets_anywhere(values: str) -> None:
    """The chart makes no Secret; every token, password and database URL a pod reads comes from
    a secretKeyRef; neither the values nor the output carry a credential."""
    objects = template(*VALUE_SETS[values])
    assert not [o for o in objects if o["kind"] == "Secret"]
    sensitive = re.compile(r"(PASSWORD|TOKEN|SECRET|DATABASE_URL|NKEY|CREDS)$")
    for workload, pod in pod_specs(objects):
        for container in pod["containers"]:
            for entry in container.get("env", []):
                if sensitive.search(entry["name"]):
                    assert "secretKeyRef" in entry.get("valueFrom", {}), (workload["metadata"]["name"], entry)
    text = yaml.safe_dump_all(objects)
    for literal in ("postgresql://", "postgres://", "replace-with", "BEGIN PRIVATE KEY", "PASSWORD@"):
        assert literal not in text
    for path in (CHART / "values.yaml", PRODUCTION_VALUES):
        for key, value in leaves(yaml.safe_load(path.read_text())):
            # Values name Secrets (`secret`, `secretName`, `existingSecret`) and keys, never hold one.
            assert not re.search(r"(?i)password|token|privatekey", key), key
            assert not re.search(r"://[^/\s]*:[^/\s]*@", str(value)), key  # user:password@ in a URL
    # The default values read the keys the documented example Secret has.
    keys = {key for _, key in manifests.secret_refs(objects)}
    if values == "defaults":
        assert keys <= set(manifests.example_secret()["stringData"])


def test_the_rendered_environment_is_production_and_the_settings_accept_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """VOC_ENV=production in every pod and migration Job, and each service's settings class
    accepts its Deployment's environment as rendered (TLS for NATS and gRPC, its own NATS user)."""
    make_certs().make_all(tmp_path / "certs")
    objects = template("-f", str(PRODUCTION_VALUES))
    config = by_key(objects)[("ConfigMap", "voc-config")]["data"]
    assert config["VOC_ENV"] == "production"
    for job in (o for o in objects if o["kind"] == "Job"):
        env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["VOC_ENV"] == "production" and env["VOC_NATS_URL"] == config["VOC_NATS_URL"]
        assert "helm.sh/hook" in job["metadata"]["annotations"]
    for service in SERVICES:
        settings, _ = manifests.manifest_settings(objects, service, monkeypatch, tmp_path / "certs")
        assert settings.environment == "production"
        assert (settings.http_port, settings.grpc_port) == manifests.default_ports(service)
        tls = settings.grpc_tls()
        assert tls is not None and tls.require_client_auth
        assert settings.nats_security().user == service
        assert all(url.startswith("tls://") for url in settings.nats_url.split(","))
