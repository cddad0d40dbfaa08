"""deploy/ validated without a Docker engine or a cluster: yamllint, every rendered Kubernetes
object against the bundled API schemas (kubernetes-validate, strict), the compose file's
structure, and ports / environment names agreeing with each service's settings class."""

from __future__ import annotations

import importlib
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.conftest import DatabaseFactory
from tests.deploy.kustomize import render
from tests.support.certs import make_certs
from voc_cli.nats import nats_server_binary
from voc_cli.supervisor import SERVICES
from voc_notify.settings import Settings as NotifySettings
from voc_platform.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S_VERSION = "1.31"
KUSTOMIZATIONS = ["base", "overlays/staging", "overlays/production"]
sys.path.insert(0, str(DEPLOY / "docker"))
import voc_entrypoint  # noqa: E402

Object = dict[str, Any]


def settings_class(service: str) -> type[ServiceSettings]:
    cls: type[ServiceSettings] = importlib.import_module(f"voc_{service}.settings").Settings
    return cls


def env_names(service: str) -> set[str]:
    """Every environment variable the service's settings read (alias, or VOC_ + field name)."""
    names = set()
    for name, field in settings_class(service).model_fields.items():
        alias = field.validation_alias
        names.add(alias.upper() if isinstance(alias, str) else f"VOC_{name.upper()}")
    return names


def default_ports(service: str) -> tuple[int, int]:
    fields = settings_class(service).model_fields
    return int(fields["http_port"].default), int(fields["grpc_port"].default)


def k8s_disagreements(objects: list[Object]) -> list[str]:
    """Ports and env names of each service's Deployment / Job / Services vs its settings."""
    problems: list[str] = []
    config = {o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"}
    for service in SERVICES:
        known = env_names(service) | set(voc_entrypoint.ENTRYPOINT_ENV)
        upper = service.upper()
        workloads = [
            o
            for o in objects
            if o["kind"] in ("Deployment", "Job")
            and o["metadata"]["labels"].get("app.kubernetes.io/name") == service
        ]
        if not any(o["kind"] == "Deployment" for o in workloads):
            problems.append(f"{service}: no Deployment")
        for workload in workloads:
            where = f"{workload['kind']}/{workload['metadata']['name']}"
            for container in workload["spec"]["template"]["spec"]["containers"]:
                env = {e["name"]: e.get("value") for e in container.get("env", [])}
                for source in container.get("envFrom", []):
                    env.update(config.get(source["configMapRef"]["name"], {}))
                for name in env:
                    if name.startswith(("VOC_", "OTEL_")) and name not in known:
                        problems.append(f"{where}: {name} is not a setting of voc_{service}")
                if workload["kind"] != "Deployment":
                    continue
                http = int(env.get(f"VOC_{upper}_HTTP_PORT") or default_ports(service)[0])
                grpc = int(env.get(f"VOC_{upper}_GRPC_PORT") or default_ports(service)[1])
                ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
                if ports != {"http": http, "grpc": grpc}:
                    problems.append(f"{where}: container ports {ports} but settings http={http} grpc={grpc}")
                for probe_name in ("readinessProbe", "livenessProbe", "startupProbe"):
                    probe = container.get(probe_name) or {}
                    port = (probe.get("httpGet") or probe.get("grpc") or {}).get("port")
                    if port is None:
                        problems.append(f"{where}: no {probe_name}")
                    elif ports.get(port, port) not in (http, grpc):
                        problems.append(f"{where}: {probe_name} port {port} is neither {http} nor {grpc}")
                if not container.get("resources", {}).get("requests") or not container["resources"].get(
                    "limits"
                ):
                    problems.append(f"{where}: resource requests and limits are required")
        for svc in (
            o
            for o in objects
            if o["kind"] == "Service" and o["spec"]["selector"].get("app.kubernetes.io/name") == service
        ):
            http, grpc = default_ports(service)
            for port in svc["spec"]["ports"]:
                if port["port"] != {"http": http, "grpc": grpc}[port["targetPort"]]:
                    problems.append(f"Service/{svc['metadata']['name']}: {port['name']} port {port['port']}")
        if not any(o["kind"] == "PodDisruptionBudget" and o["metadata"]["name"] == service for o in objects):
            problems.append(f"{service}: no PodDisruptionBudget")
    return problems


def compose() -> Object:
    document: Object = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    return document


def compose_disagreements(document: Object) -> list[str]:
    problems: list[str] = []
    services = document["services"]
    for service in SERVICES:
        spec = services[service]
        upper = service.upper()
        env = spec.get("environment", {})
        known = env_names(service) | set(voc_entrypoint.ENTRYPOINT_ENV)
        problems += [
            f"compose {service}: {n} is not a setting" for n in env if n.startswith("VOC_") and n not in known
        ]
        http = int(env.get(f"VOC_{upper}_HTTP_PORT") or default_ports(service)[0])
        if f"127.0.0.1:{http}/readyz" not in " ".join(spec["healthcheck"]["test"]):
            problems.append(f"compose {service}: healthcheck does not probe /readyz on {http}")
        if not all(p.endswith(f":{http}") for p in spec.get("ports", [])):
            problems.append(f"compose {service}: published ports {spec.get('ports')} vs http {http}")
        if spec.get("deploy", {}).get("replicas", 1) < 2:
            problems.append(f"compose {service}: fewer than two replicas")
    return problems


def assert_schema_valid(objects: list[Object]) -> None:
    """Every object validates against the Kubernetes API schema (strict: no unknown fields)."""
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message} at {list(exc.path)}")


def example_secret() -> Object:
    secret: Object = yaml.safe_load((DEPLOY / "k8s" / "base" / "secret.example.yaml").read_text())
    return secret


def secret_refs(objects: list[Object], *, optional: bool = False) -> set[tuple[str, str]]:
    """(Secret name, key) of every required (or, with `optional`, every optional) secretKeyRef a
    workload's containers read."""
    return {
        (ref["name"], ref["key"])
        for o in objects
        if o["kind"] in ("Deployment", "Job", "StatefulSet")
        for c in o["spec"]["template"]["spec"]["containers"]
        for e in c.get("env", [])
        if (ref := e.get("valueFrom", {}).get("secretKeyRef")) and bool(ref.get("optional")) == optional
    }


def is_optional_secret(entry: Object) -> bool:
    return bool(entry.get("valueFrom", {}).get("secretKeyRef", {}).get("optional"))


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_kubernetes_object_validates_against_the_api_schema(kustomization: str) -> None:
    objects = render(DEPLOY / "k8s" / kustomization)
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service", "PodDisruptionBudget", "Job", "StatefulSet", "ConfigMap"} <= kinds
    assert_schema_valid(objects)
    secret = example_secret()
    kubernetes_validate.validate(secret, K8S_VERSION, strict=True)
    # Every secret key a workload reads is in the documented example Secret.
    assert {key for _, key in secret_refs(objects)} <= set(secret["stringData"])
    # An optional key is left out of the example (absent = the feature is off) but documented in it.
    example = (DEPLOY / "k8s" / "base" / "secret.example.yaml").read_text()
    assert all(f"{key}:" in example for _, key in secret_refs(objects, optional=True))
    assert k8s_disagreements(objects) == []


def test_overlays_change_what_they_say() -> None:
    production = {(o["kind"], o["metadata"]["name"]): o for o in render(DEPLOY / "k8s/overlays/production")}
    assert production[("Deployment", "feedback")]["spec"]["replicas"] == 3
    assert production[("Deployment", "profile")]["spec"]["replicas"] == 2
    notify = production[("Deployment", "notify")]["spec"]["template"]["spec"]["containers"][0]
    assert notify["resources"]["limits"]["cpu"] == "2" and notify["env"]  # patched, env kept
    assert notify["image"] == "registry.example.com/frontline-voc/notify:0.2.0"
    staging = render(DEPLOY / "k8s/overlays/staging")
    assert {o["metadata"].get("namespace") for o in staging if o["kind"] != "Namespace"} == {"voc-staging"}
    config = next(o for o in staging if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "voc-config")
    assert config["data"]["VOC_LOG_LEVEL"] == "DEBUG" and config["data"]["VOC_ENV"] == "production"


def test_a_port_or_env_name_that_disagrees_with_the_settings_fails() -> None:
    objects = render(DEPLOY / "k8s" / "base")
    deployment = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "profile")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["ports"][0]["containerPort"] = 8021
    container["env"].append({"name": "VOC_PROFILE_HTTP_PROT", "value": "8020"})
    problems = k8s_disagreements(objects)
    assert any("container ports" in p and "profile" in p for p in problems)
    assert any("VOC_PROFILE_HTTP_PROT is not a setting of voc_profile" in p for p in problems)
    document = compose()
    document["services"]["notify"]["environment"]["VOC_NOTIFY_HTTP_PORT"] = "8050"
    assert any("healthcheck" in p for p in compose_disagreements(document))


def secret_value(name: str) -> str:
    """A random value of the shape the secret holds: a database URL is a URL (the settings check
    its scheme), everything else a random token."""
    token = secrets.token_urlsafe(32)
    if name.endswith("_DATABASE_URL"):
        service = name.removeprefix("VOC_").removesuffix("_DATABASE_URL").lower()
        return f"postgresql://voc_{service}:{token}@postgres:5432/voc_{service}"
    return token


def manifest_settings(
    objects: list[Object],
    service: str,
    monkeypatch: pytest.MonkeyPatch,
    certs: Path,
    optional_secrets: dict[str, str] | None = None,
) -> tuple[ServiceSettings, Object]:
    """The service's settings built from its Deployment's environment alone (its ConfigMaps, its
    env, ConfigMap keys it names; required secrets filled in with random values, optional ones left out unless
    `optional_secrets` (env name → value) gives them, the mounted certificates taken from
    `certs`), and its container."""
    configs = {o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"}
    deployment = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == service)
    container: Object = deployment["spec"]["template"]["spec"]["containers"][0]
    with monkeypatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("VOC_")]:
            patch.delenv(key)
        for source in container.get("envFrom", []):
            for key, value in configs[source["configMapRef"]["name"]].items():
                patch.setenv(key, value)
        for entry in container["env"]:
            if is_optional_secret(entry):
                if entry["name"] in (optional_secrets or {}):
                    patch.setenv(entry["name"], (optional_secrets or {})[entry["name"]])
                continue
            # A ConfigMap key is read from its ConfigMap (a public URL must be one); the rest are
            # the Secret's, filled in with random values.
            ref = entry.get("valueFrom", {}).get("configMapKeyRef")
            given = configs[ref["name"]][ref["key"]] if ref else None
            patch.setenv(entry["name"], entry.get("value") or given or secret_value(entry["name"]))
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        assert mounts["tls"] == "/etc/voc/tls"
        assert volumes["tls"]["secret"]["secretName"] == f"voc-{service}-tls"
        for key in [k for k in os.environ if k.startswith("VOC_")]:
            if os.environ[key].startswith("/etc/voc/tls/"):  # the Secret cert-manager makes
                patch.setenv(key, str(certs / service / os.environ[key].rsplit("/", 1)[1]))
        return settings_class(service)(), container


def test_the_settings_accept_the_manifest_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Production settings built from the ConfigMap + each Deployment's env (secrets filled in
    with random values, the mounted certificates made here) validate: types, URL schemes, the
    production secret rules; and they run the bus and gRPC authenticated over TLS (#21 finding 5)."""
    make_certs().make_all(tmp_path / "certs")
    objects = render(DEPLOY / "k8s" / "overlays" / "production")
    for service in SERVICES:
        settings, container = manifest_settings(objects, service, monkeypatch, tmp_path / "certs")
        assert settings.environment == "production" and settings.host == "0.0.0.0"
        assert (settings.http_port, settings.grpc_port) == default_ports(service)
        tls = settings.grpc_tls()
        assert tls is not None and tls.cert_file and tls.key_file and tls.ca_file and tls.require_client_auth
        nats = settings.nats_security()
        assert nats.user == service and nats.password and nats.tls_ca and nats.tls_cert
        assert all(url.startswith("tls://") for url in settings.nats_url.split(","))
        probe = container["livenessProbe"]
        assert "grpc" not in probe  # Kubernetes' gRPC probe cannot speak TLS


def test_notify_sends_mail_and_sms_once_their_optional_secrets_exist(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without the optional keys notify starts with no customer channel; with smtp-url in the
    Secret and an SMS gateway in its ConfigMap, the production settings accept both."""
    make_certs().make_all(tmp_path / "certs")
    objects = render(DEPLOY / "k8s" / "overlays" / "production")
    plain, _ = manifest_settings(objects, "notify", monkeypatch, tmp_path / "certs")
    assert isinstance(plain, NotifySettings)
    assert plain.smtp_url == "" and plain.sms_gateway_url == ""
    configs = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ConfigMap"}
    config = configs["voc-notify-config"]
    config["data"].update(
        VOC_SMS_GATEWAY_URL="https://sms.example.com/v1/messages",
        VOC_SMS_SENDER="0215880000",
        VOC_SMS_TEMPLATE_ID="VOC_FOLLOW_UP_1",
    )
    sending, _ = manifest_settings(
        objects,
        "notify",
        monkeypatch,
        tmp_path / "certs",
        {"VOC_SMTP_URL": "smtps://voc:s3cret@smtp.example.com:465", "VOC_SMS_GATEWAY_TOKEN": "t0ken"},
    )
    assert isinstance(sending, NotifySettings)
    assert sending.smtp_url.startswith("smtps://") and sending.mail_from
    assert sending.sms_gateway_token == "t0ken" and sending.sms_sender == "0215880000"


def nats_passwords(accounts: str) -> set[str]:
    return set(re.findall(r"password: \$(VOC_NATS_[A-Z]+_PASSWORD)", accounts))


def test_nats_runs_the_accounts_over_tls_in_both_manifests(tmp_path: Path) -> None:
    """The NATS configurations of deploy/ parse with the bundled nats-server (TLS for clients and
    routes, the accounts included), carry deploy/nats/accounts.conf verbatim, and get every
    password those accounts read; each service logs in as its own user (#21 finding 5)."""
    accounts = (DEPLOY / "nats" / "accounts.conf").read_text()
    variables = nats_passwords(accounts)
    assert variables == {
        f"VOC_NATS_{u}_PASSWORD" for u in (*[s.upper() for s in SERVICES], "ADMIN", "SYSTEM")
    }
    certs = tmp_path / "certs"
    make_certs().make_all(certs)
    env = {**os.environ, "POD_NAME": "nats-0", **{v: "n" + secrets.token_hex(24) for v in variables}}

    def parses(config: str, name: str) -> None:
        directory = tmp_path / name
        directory.mkdir()
        (directory / "nats.conf").write_text(config.replace("/etc/nats-tls/", f"{certs}/nats/"))
        (directory / "accounts.conf").write_text(accounts)
        done = subprocess.run(
            [nats_server_binary(), "-c", str(directory / "nats.conf"), "-t"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "include accounts.conf" in config and "verify: true" in config

    objects = render(DEPLOY / "k8s" / "overlays" / "production")
    config = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "nats-config")
    assert config["data"]["accounts.conf"] == accounts
    parses(config["data"]["nats.conf"], "k8s")
    nats = next(o for o in objects if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "nats")
    container = nats["spec"]["template"]["spec"]["containers"][0]
    from_secret = {e["name"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    assert variables <= from_secret
    assert {"name": "tls", "mountPath": "/etc/nats-tls", "readOnly": True} in container["volumeMounts"]
    voc_config = next(
        o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "voc-config"
    )
    assert all(url.startswith("tls://") for url in voc_config["data"]["VOC_NATS_URL"].split(","))

    document = compose()
    parses((DEPLOY / "compose" / "nats.conf").read_text(), "compose")
    for n in (1, 2, 3):
        node = document["services"][f"nats-{n}"]
        assert node["command"][:2] == ["-c", "/etc/nats/nats.conf"]
        assert "../nats/accounts.conf:/etc/nats/accounts.conf:ro" in node["volumes"]
        assert variables <= set(node["environment"])
    for service in SERVICES:
        spec = document["services"][service]
        assert spec["environment"]["VOC_NATS_USER"] == service
        assert spec["environment"]["VOC_NATS_PASSWORD"].startswith(
            f"${{VOC_NATS_{service.upper()}_PASSWORD:?"
        )
        assert spec["environment"]["VOC_GRPC_TLS_CLIENT_AUTH"] == "require"
        assert f"./certs/{service}:/etc/voc/tls:ro" in spec["volumes"]


def test_yaml_lint_is_clean() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "yamllint",
            "-f",
            "parsable",
            "-c",
            str(DEPLOY / ".yamllint.yaml"),
            str(DEPLOY),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_structure() -> None:
    document = compose()
    services = document["services"]
    assert {"postgres", "nats-1", "nats-2", "nats-3", "otel-collector", *SERVICES} <= set(services)
    for name, spec in services.items():
        for dependency, condition in (spec.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert condition["condition"] in ("service_healthy", "service_completed_successfully")
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"
    for service in SERVICES:
        assert services[f"migrate-{service}"]["command"] == ["migrate"]
        assert (
            services[service]["depends_on"][f"migrate-{service}"]["condition"]
            == "service_completed_successfully"
        )
    # A 3-node JetStream cluster: each node routes to the other two.
    for n in (1, 2, 3):
        command = " ".join(services[f"nats-{n}"]["command"])
        assert "-js" in command and all(f"nats-{m}:6222" in command for m in (1, 2, 3) if m != n)
    # Every ${VAR} the file needs is documented in .env.example.
    example = (DEPLOY / "compose" / ".env.example").read_text()
    text = (DEPLOY / "compose" / "compose.yaml").read_text()
    import re

    for variable in set(re.findall(r"\$\{([A-Z_]+)", text)):
        assert variable in example, f"{variable} is not documented in .env.example"
    assert compose_disagreements(document) == []


def test_dockerfile_is_multi_stage_non_root_and_pinned() -> None:
    text = (DEPLOY / "docker" / "Dockerfile").read_text()
    stages = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert len(stages) >= 3
    images = [
        line.split("=", 1)[1] for line in text.splitlines() if line.startswith("ARG ") and "_IMAGE=" in line
    ]
    assert images and all(
        ":" in i and not i.endswith(":latest") and any(c.isdigit() for c in i.split(":")[1]) for i in images
    )
    users = [line for line in text.splitlines() if line.startswith("USER ")]
    assert users and users[-1].split()[1].split(":")[0] not in ("root", "0")
    assert 'ENTRYPOINT ["python", "/app/voc_entrypoint.py"]' in text


def test_the_image_entrypoint_migrates_a_fresh_database(databases: DatabaseFactory, tmp_path: Path) -> None:
    url = databases.url("entrypoint_actions")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOC_")}
    env.update({"VOC_SERVICE": "actions", "VOC_ACTIONS_DATABASE_URL": url, "VOC_DATA_DIR": str(tmp_path)})
    script = str(DEPLOY / "docker" / "voc_entrypoint.py")
    for _ in range(2):  # idempotent: a second run of the Job finds nothing to do
        done = subprocess.run(
            [sys.executable, script, "migrate"], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert "actions: migrations applied" in done.stdout
    bad = subprocess.run(
        [sys.executable, script, "migrate"],
        env={**env, "VOC_SERVICE": "billing"},
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "VOC_SERVICE must be one of" in bad.stderr


def test_the_entrypoint_installs_the_shared_vapid_key_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "mounted.pem"
    source.write_bytes(b"-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n")
    source.chmod(0o444)  # what a secret mount looks like
    monkeypatch.setenv("VOC_VAPID_KEY_FILE", str(source))
    monkeypatch.setenv("VOC_DATA_DIR", str(tmp_path / "data"))
    voc_entrypoint.install_vapid_key()
    installed = tmp_path / "data" / "vapid_private_key.pem"
    assert installed.read_bytes() == source.read_bytes()
    assert installed.stat().st_mode & 0o777 == 0o600
