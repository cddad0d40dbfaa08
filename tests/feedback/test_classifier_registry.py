"""The classifier model registry (#17 point 5) on two real feedback replicas sharing one database
and one nats-server: `voc classifier train` (a real process) refuses a deliberately small model at
the gate, promotes a full retrain with staff corrections, and both replicas classify new feedback
with it without a restart; rollback; bad input changes nothing.

One full training (~45-100 s) runs in this module (`promoted`); the small model trains in ~2 s.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import DatabaseFactory
from tests.feedback.conftest import problem
from voc_cli.nats import NatsServer
from voc_cli.supervisor import free_port
from voc_feedback.classification.gate import GATE_METRICS
from voc_feedback.classification.model import MODEL_DIR, packaged_model
from voc_platform.identity import Principal, issue_token

ROOT = Path(__file__).resolve().parents[2]
CORRECTIONS = Path(__file__).parent / "data" / "corrections-sample.ndjson"
ADMIN_TOKEN = "registry-tests-admin-token"
JWT_SECRET = "registry-tests-jwt-secret-of-32-bytes-or-more"
MODELS = "/v1/admin/classifier/models"
SWITCH_BOUND_SECONDS = 15.0  # the promotion event reaches a replica well inside this
BUILTIN = packaged_model().version
STORE = "store-registry"


@dataclass
class Replica:
    name: str
    url: str

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def state(self) -> dict[str, Any]:
        response = httpx.get(f"{self.url}{MODELS}", headers=self.admin, timeout=10)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def classify(self, key: str, text: str) -> dict[str, Any]:
        """Submit one feedback item and read back its classification."""
        posted = httpx.post(
            f"{self.url}/v1/feedback",
            json={"store_id": STORE, "channel": "kiosk", "text": text},
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert posted.status_code == 202, posted.text
        item = httpx.get(f"{self.url}/v1/feedback/{posted.json()['id']}", headers=self.admin, timeout=10)
        assert item.status_code == 200, item.text
        classification: dict[str, Any] = item.json()["classification"]
        return classification


@dataclass
class Cluster:
    a: Replica
    b: Replica
    key: str
    database_url: str
    env: dict[str, str]  # what A and B run with
    procs: list[subprocess.Popen[bytes]]
    logs: Path

    def voc(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`voc classifier …` against replica A, as an operator runs it (from the repository root)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOC_")}
        env.update({"VOC_ADMIN_TOKEN": ADMIN_TOKEN, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
        return subprocess.run(
            [sys.executable, "-m", "voc_cli", "classifier", *args, "--url", self.a.url],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )


def _start(name: str, env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen[bytes], Replica]:
    http_port = free_port()
    url = f"http://127.0.0.1:{http_port}"
    env = {**env, "VOC_FEEDBACK_HTTP_PORT": str(http_port), "VOC_FEEDBACK_GRPC_PORT": str(free_port())}
    env["VOC_FEEDBACK_PUBLIC_URL"] = url
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "voc_feedback"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"feedback {name} exited with {proc.returncode}; see {log_path}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return proc, Replica(name, url)
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"feedback {name} not ready; see {log_path}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, databases: DatabaseFactory, artifacts: Path
) -> Iterator[Cluster]:
    server = NatsServer(store_dir=tmp_path_factory.mktemp("registry-nats"), port=0, name="voc-registry-test")
    server.start()
    database_url = databases.url("feedback_registry")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOC_")}
    env.update(
        {
            "VOC_ENV": "test",
            "VOC_DATA_DIR": str(tmp_path_factory.mktemp("registry-data")),
            "VOC_NATS_URL": server.url,
            "VOC_ADMIN_TOKEN": ADMIN_TOKEN,
            "VOC_INTERNAL_TOKEN": "registry-tests-internal-token",
            "VOC_JWT_SECRET": JWT_SECRET,
            "VOC_FEEDBACK_DATABASE_URL": database_url,
            "VOC_FEEDBACK_FOLLOW_UP_SECRET": "registry-tests-follow-up-secret",
            # The event is what switches a replica; the periodic check is left at a minute so a
            # switch inside the test's bound cannot come from it.
            "VOC_FEEDBACK_CLASSIFIER_POLL_SECONDS": "60",
            "VOC_LOG_FORMAT": "text",
            "PYTHONUNBUFFERED": "1",
        }
    )
    tag = os.environ.get("VOC_TEST_DATABASE", "sqlite")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        # One after the other: the first runs the migrations.
        proc_a, a = _start("A", env, artifacts / f"{tag}-feedback-registry-a.log")
        procs.append(proc_a)
        proc_b, b = _start("B", env, artifacts / f"{tag}-feedback-registry-b.log")
        procs.append(proc_b)
        stores = httpx.put(f"{a.url}/v1/admin/stores", json=[{"id": STORE, "name": STORE}], headers=a.admin)
        assert stores.status_code == 200, stores.text  # a key names only stores in the directory
        made = httpx.post(
            f"{a.url}/v1/admin/api-keys", json={"name": "registry", "store_ids": [STORE]}, headers=a.admin
        )
        assert made.status_code == 201, made.text
        yield Cluster(a, b, made.json()["api_key"], database_url, env, procs, artifacts)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        server.stop()


def wait_served(replica: Replica, version: str, bound: float = SWITCH_BOUND_SECONDS) -> float:
    """Seconds until `replica` serves `version`; fails past `bound`."""
    started = time.monotonic()
    while (served := replica.state()["served_version"]) != version:
        assert time.monotonic() - started < bound, f"{replica.name} still serves {served}, not {version}"
        time.sleep(0.05)
    return time.monotonic() - started


def assert_classified_by(cluster: Cluster, version: str) -> None:
    """New feedback on both replicas carries `version`, and its explanation names that same one
    (an item is classified wholly by one version)."""
    for replica in (cluster.a, cluster.b):
        for text in ("The fries were cold and the cashier ignored us.", "직원분이 정말 친절했어요"):
            got = replica.classify(cluster.key, text)
            assert got["model_version"] == version, (replica.name, got)
            assert any(line.startswith(f"model {version}:") for line in got["explanation"]), got


def registry_rows(cluster: Cluster) -> list[dict[str, Any]]:
    models: list[dict[str, Any]] = cluster.a.state()["models"]
    return models


def test_bad_input_is_refused_and_nothing_is_stored(cluster: Cluster) -> None:
    a = cluster.a
    before = registry_rows(cluster)
    for method, path in (
        ("GET", f"{MODELS}/hashlr-2-0000000000"),
        ("GET", f"{MODELS}/hashlr-2-0000000000/bundle"),
        ("POST", f"{MODELS}/hashlr-2-0000000000:promote"),
        ("POST", f"{MODELS}/hashlr-2-0000000000:rollback"),
    ):
        problem(httpx.request(method, f"{a.url}{path}", headers=a.admin), 404)
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("model.json", '{"version": "hashlr-2-0000000000"}')
        archive.writestr("model.npz", b"not numpy")
    for body in (b"garbage, not a zip", zipped.getvalue(), b""):
        answer = problem(
            httpx.post(
                f"{a.url}{MODELS}", content=body, headers={**a.admin, "Content-Type": "application/zip"}
            ),
            422,
        )
        assert answer["errors"][0]["field"] == "body"
    problem(httpx.post(f"{a.url}{MODELS}", json={"model": "x"}, headers=a.admin), 415)
    # Rolling back to what serves already, or promoting the built-in model: 409.
    problem(httpx.post(f"{a.url}{MODELS}/{BUILTIN}:rollback", headers=a.admin), 409)
    # Callers: none and a store key 401; a store manager's staff token 403; cx_admin allowed.
    manager = issue_token(Principal("mgr-1", "store_manager", (STORE,), None), secret=JWT_SECRET, ttl=600)
    cx_admin = issue_token(Principal("cx-1", "cx_admin", (), None), secret=JWT_SECRET, ttl=600)
    for headers, status in (
        ({}, 401),
        ({"Authorization": f"Bearer {cluster.key}"}, 401),
        ({"Authorization": f"Bearer {manager}"}, 403),
    ):
        problem(httpx.get(f"{a.url}{MODELS}", headers=headers), status)
        problem(
            httpx.post(
                f"{a.url}{MODELS}", content=b"x", headers={**headers, "Content-Type": "application/zip"}
            ),
            status,
        )
        problem(httpx.post(f"{a.url}{MODELS}/{BUILTIN}:rollback", headers=headers), status)
    assert httpx.get(f"{a.url}{MODELS}", headers={"Authorization": f"Bearer {cx_admin}"}).status_code == 200
    assert registry_rows(cluster) == before
    for replica in (cluster.a, cluster.b):
        assert replica.state()["served_version"] == BUILTIN


def packaged_bundle(**replace: bytes) -> bytes:
    """The packaged model's files as an upload, some entries replaced or added."""
    base = files("voc_feedback.classification") / MODEL_DIR
    entries = {name: (base / name).read_bytes() for name in ("model.npz", "model.json")}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in {**entries, **{k.replace("_", "."): v for k, v in replace.items()}}.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def patched(blob: bytes, name: str, *, method: int | None = None, flags: int | None = None) -> bytes:
    """`blob` with entry `name`'s compression method or flag bits rewritten in both of its headers
    (zipfile will not write a method it lacks, nor encrypt)."""
    data = bytearray(blob)
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + name_length] == name.encode():
            local = struct.unpack_from("<I", data, at + 42)[0]
            if method is not None:
                struct.pack_into("<H", data, at + 10, method)
                struct.pack_into("<H", data, local + 8, method)
            if flags is not None:
                struct.pack_into("<H", data, at + 8, flags)
                struct.pack_into("<H", data, local + 6, flags)
            return bytes(data)
        at = data.find(b"PK\x01\x02", at + 46)
    raise AssertionError(f"no entry {name}")


def test_unreadable_bundle_entries_are_refused_naming_the_file(cluster: Cluster) -> None:
    """Entries zipfile or json cannot read (each was a 500) are a 422 that names the entry."""
    a = cluster.a
    before = registry_rows(cluster)
    figures = {m: 0.9 for m in GATE_METRICS}
    huge = {**figures, next(iter(GATE_METRICS)): 10**400}
    deep = b"[" * 200_000 + b"]" * 200_000
    cases = [
        (packaged_bundle(gate_json=deep), "gate.json"),
        (
            packaged_bundle(
                gate_json=json.dumps(
                    {"baseline_version": BUILTIN, "candidate": huge, "baseline": figures}
                ).encode()
            ),
            "gate.json",
        ),
        (packaged_bundle(model_json=deep), "model.json"),
        (patched(packaged_bundle(), "model.json", method=99), "model.json"),
        (patched(packaged_bundle(), "model.npz", flags=0x1), "model.npz"),
    ]
    for body, entry in cases:
        answer = problem(
            httpx.post(
                f"{a.url}{MODELS}",
                content=body,
                headers={**a.admin, "Content-Type": "application/zip"},
                timeout=30,
            ),
            422,
        )
        assert entry in answer["detail"] and answer["errors"][0]["field"] == "body", answer
    assert registry_rows(cluster) == before


@pytest.fixture(scope="module")
def refused(cluster: Cluster) -> subprocess.CompletedProcess[str]:
    """A deliberately small model (about 400 training rows), trained, gated, uploaded and refused."""
    return cluster.voc("train", "--corrections", str(CORRECTIONS), "--max-rows", "400", "--no-progress")


def test_a_regressing_model_is_refused_with_its_figures_and_nothing_changes(
    cluster: Cluster, refused: subprocess.CompletedProcess[str]
) -> None:
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "REFUSED" in refused.stderr and "category_macro_f1.en-restaurant" in refused.stderr
    print("\n" + refused.stdout)
    state = cluster.a.state()
    assert state["active_version"] is None
    (candidate,) = [m for m in state["models"] if m["status"] == "candidate"]
    assert candidate["metrics"]["training_rows"]["correction"] == 7  # 8 lines, fb-0002 twice
    # The same promotion asked of replica B directly: 409 problem+json naming each metric.
    answer = problem(
        httpx.post(f"{cluster.b.url}{MODELS}/{candidate['version']}:promote", headers=cluster.b.admin), 409
    )
    metrics = {r["metric"] for r in answer["regressions"]}
    assert "category_macro_f1.en-restaurant" in metrics and "sentiment_accuracy.en-real" in metrics
    assert {e["field"] for e in answer["errors"]} == {f"metrics.{m}" for m in metrics}
    assert answer["baseline_version"] == BUILTIN
    for r in answer["regressions"]:
        assert r["candidate"] < r["baseline"] - r["tolerance"]
    assert cluster.a.state()["active_version"] is None
    assert_classified_by(cluster, BUILTIN)


@pytest.fixture(scope="module")
def promoted(cluster: Cluster, refused: subprocess.CompletedProcess[str]) -> str:
    """The one full training of the suite: corpora + staff corrections, gated, promoted. The
    corrections are made through replica A's API on items it classified, and `voc classifier
    train --from` reads them back from A's labelled-example export: the whole loop."""
    for line in CORRECTIONS.read_text().splitlines():
        sample = orjson.loads(line)
        posted = httpx.post(
            f"{cluster.a.url}/v1/feedback",
            json={"store_id": STORE, "channel": "kiosk", "text": sample["text"]},
            headers={"Authorization": f"Bearer {cluster.key}"},
            timeout=10,
        )
        assert posted.status_code == 202, posted.text
        corrected = httpx.post(
            f"{cluster.a.url}/v1/feedback/{posted.json()['id']}/corrections",
            json={"sentiment": sample["sentiment"], "category": sample["category"]},
            headers=cluster.a.admin,
            timeout=10,
        )
        assert corrected.status_code in (200, 201), corrected.text
    started = time.monotonic()
    done = cluster.voc("train", "--from", cluster.a.url, "--no-progress")
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    print(f"\n{done.stdout}\nvoc classifier train (full): {elapsed:.1f} s")
    version: str = next(m["version"] for m in cluster.a.state()["models"] if m["status"] == "active")
    return version


@pytest.mark.timeout(900)  # its fixture runs the suite's one full training (45-100 s) and two gate scorings
def test_a_full_retrain_with_corrections_is_promoted_and_every_replica_switches(
    cluster: Cluster, promoted: str
) -> None:
    version = promoted
    assert version != BUILTIN
    state = cluster.a.state()
    assert state["active_version"] == version
    (row,) = [m for m in state["models"] if m["version"] == version]
    # Eight corrected items (the sample's eight lines, each its own item here).
    assert row["training_rows"] > 46_000 and row["metrics"]["training_rows"]["correction"] == 8
    assert row["metrics"]["gate"]["baseline_version"] == BUILTIN and row["promoted_at"]
    waited = wait_served(cluster.b, version)
    print(f"\npromoted through A -> served by B after {waited * 1000:.0f} ms more")
    assert cluster.a.state()["served_version"] == version
    assert_classified_by(cluster, version)
    # The refused candidate was gated against the built-in model; that is no longer active.
    stale = next(m["version"] for m in registry_rows(cluster) if m["status"] == "candidate")
    answer = problem(httpx.post(f"{cluster.a.url}{MODELS}/{stale}:promote", headers=cluster.a.admin), 409)
    assert "run the gate again" in answer["detail"]


@pytest.mark.timeout(900)  # alone (-k), it runs the full training itself
def test_rollback_switches_every_replica_back_and_forth(cluster: Cluster, promoted: str) -> None:
    version = promoted
    back = cluster.voc("rollback", BUILTIN)
    assert back.returncode == 0, back.stderr
    for replica in (cluster.b, cluster.a):
        wait_served(replica, BUILTIN)
    assert cluster.a.state()["active_version"] is None
    assert_classified_by(cluster, BUILTIN)
    # A version that was active may come back without the gate; a never-active one may not.
    problem(httpx.post(f"{cluster.b.url}{MODELS}/{version}:promote", headers=cluster.b.admin), 409)
    again = httpx.post(f"{cluster.b.url}{MODELS}/{version}:rollback", headers=cluster.b.admin)
    assert again.status_code == 200, again.text
    assert again.json() == {"active_version": version, "previous_version": BUILTIN}
    wait_served(cluster.a, version)
    assert_classified_by(cluster, version)
    never = next(m["version"] for m in registry_rows(cluster) if m["status"] == "candidate")
    problem(httpx.post(f"{cluster.a.url}{MODELS}/{never}:rollback", headers=cluster.a.admin), 409)
    status = cluster.voc("status")
    assert status.returncode == 0 and f"active:  {version}" in status.stdout, status.stdout


@pytest.mark.timeout(900)  # alone (-k), it runs the full training itself
def test_a_replica_that_never_hears_the_event_starts_on_and_polls_its_way_to_the_active_version(
    cluster: Cluster, promoted: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Replica C shares the database but has a nats-server of its own, so no promotion event
    reaches it: it loads the active version when it starts, and follows a later rollback through
    its periodic check (VOC_FEEDBACK_CLASSIFIER_POLL_SECONDS=1) alone."""
    deaf = NatsServer(
        store_dir=tmp_path_factory.mktemp("registry-deaf-nats"), port=0, name="voc-registry-deaf"
    )
    deaf.start()
    try:
        env = {**cluster.env, "VOC_NATS_URL": deaf.url, "VOC_FEEDBACK_CLASSIFIER_POLL_SECONDS": "1"}
        tag = os.environ.get("VOC_TEST_DATABASE", "sqlite")
        proc, c = _start("C", env, cluster.logs / f"{tag}-feedback-registry-c.log")
        cluster.procs.append(proc)
        active = cluster.a.state()["active_version"]
        assert c.state()["served_version"] == active
        other = BUILTIN if active != BUILTIN else promoted
        assert cluster.voc("rollback", other).returncode == 0
        waited = wait_served(c, other, bound=5.0)
        print(f"\nrollback through A -> served by C (poll only, every 1 s) after {waited * 1000:.0f} ms")
        assert c.classify(cluster.key, "The staff were lovely.")["model_version"] == other
    finally:
        deaf.stop()
