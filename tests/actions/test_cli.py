"""The CX team's authoring loop in the `voc` CLI: validate a directory, test it against cases,
publish it to a running actions service."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.actions.conftest import playbook_yaml, unique_id
from tests.conftest import RunningSystem
from voc_actions.playbooks import library_path
from voc_cli.__main__ import main as voc

LIBRARY = library_path()


def test_validate_the_shipped_library(capsys: pytest.CaptureFixture[str]) -> None:
    assert voc(["playbooks", "validate", str(LIBRARY)]) == 0
    assert capsys.readouterr().out.strip() == f"ok: 56 playbooks in {LIBRARY}"


def test_validate_names_file_line_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(LIBRARY, tmp_path / "lib")
    broken = (tmp_path / "lib" / "food-quality-default.yaml").read_text(encoding="utf-8")
    (tmp_path / "lib" / "food-quality-default.yaml").write_text(
        broken.replace("priority: normal", "priority: whenever"), encoding="utf-8"
    )
    assert voc(["playbooks", "validate", str(tmp_path / "lib")]) == 1
    err = capsys.readouterr().err
    assert "food-quality-default.yaml:7: priority: unknown priority 'whenever'" in err


def test_validate_requires_a_default_per_category(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(LIBRARY, tmp_path / "lib")
    (tmp_path / "lib" / "praise-default.yaml").unlink()
    assert voc(["playbooks", "validate", str(tmp_path / "lib")]) == 1
    assert "no default playbook for category 'praise'" in capsys.readouterr().err


def test_the_shipped_cases_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert voc(["playbooks", "test", str(LIBRARY), str(LIBRARY / "cases.yaml")]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and out.strip().endswith("passed, 0 failed")


def test_a_failing_case_fails_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        "cases:\n"
        "  - name: VIP repeat food complaint at a restaurant\n"
        "    facts: {category: food_quality, store.format: restaurant, customer.tier: vip,"
        " signals.repeat_issue: true}\n"
        "    expect: food-quality-default\n",
        encoding="utf-8",
    )
    assert voc(["playbooks", "test", str(LIBRARY), str(cases)]) == 1
    out = capsys.readouterr().out
    assert (
        "FAIL  VIP repeat food complaint at a restaurant: expected food-quality-default, "
        "got restaurant-food-quality-vip-repeat"
    ) in out
    assert "0 passed, 1 failed" in out


def _publish(system: RunningSystem, directory: Path, token: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "VOC_ACTIONS_URL": system.url("actions"),
        "VOC_ADMIN_TOKEN": token,
        "VOC_DATA_DIR": str(directory.parent),
    }
    return subprocess.run(
        [sys.executable, "-m", "voc_cli", "playbooks", "publish", str(directory)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_publish_a_directory_to_the_running_service(running_system: RunningSystem, tmp_path: Path) -> None:
    actions = running_system.url("actions")
    token = running_system.system.admin_token
    admin = {"Authorization": f"Bearer {token}"}  # reading the library needs a token too
    pid = unique_id("cli")
    directory = tmp_path / "playbooks"
    directory.mkdir()
    (directory / f"{pid}.yaml").write_text(playbook_yaml(pid), encoding="utf-8")

    refused = _publish(running_system, directory, "not-the-admin-token")
    assert refused.returncode == 1 and '"status": 401' in refused.stdout
    assert httpx.get(f"{actions}/v1/playbooks/{pid}", headers=admin).status_code == 404

    done = _publish(running_system, directory, token)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f'"id": "{pid}"' in done.stdout
    assert httpx.get(f"{actions}/v1/playbooks/{pid}", headers=admin).json()["version"] == 1

    # Publishing the same version again is a regress the service refuses, naming the file.
    again = _publish(running_system, directory, token)
    assert again.returncode == 1
    assert (
        f'"file": "{pid}.yaml"' in again.stdout and "not greater than the published version 1" in again.stdout
    )

    # A broken directory is caught before anything is sent.
    (directory / f"{pid}.yaml").write_text(
        playbook_yaml(pid, version=2, category="teleportation"), encoding="utf-8"
    )
    broken = _publish(running_system, directory, token)
    assert broken.returncode == 1
    assert f"{pid}.yaml:5: when.category: unknown category 'teleportation'" in broken.stderr
    assert httpx.get(f"{actions}/v1/playbooks/{pid}", headers=admin).json()["version"] == 1


def test_a_case_with_the_wrong_modifiers_fails_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`voc playbooks test` checks the modifiers a case names, in their documented order (#18 §2)."""
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        "cases:\n"
        "  - name: VIP repeat complainer about the wait, modifiers in the wrong order\n"
        "    facts: {category: wait_time, severity: medium, sentiment: negative, customer.tier: vip,"
        " signals.repeat_issue: true}\n"
        "    expect: wait-time-default\n"
        "    modifiers: [modifier-repeat-issue, modifier-vip]\n"
        "  - name: the same, in order\n"
        "    facts: {category: wait_time, severity: medium, sentiment: negative, customer.tier: vip,"
        " signals.repeat_issue: true}\n"
        "    expect: wait-time-default\n"
        "    modifiers: [modifier-vip, modifier-repeat-issue]\n",
        encoding="utf-8",
    )
    assert voc(["playbooks", "test", str(LIBRARY), str(cases)]) == 1
    out = capsys.readouterr().out
    assert (
        "FAIL  VIP repeat complainer about the wait, modifiers in the wrong order: expected "
        "wait-time-default + modifier-repeat-issue + modifier-vip, "
        "got wait-time-default + modifier-vip + modifier-repeat-issue"
    ) in out
    assert "1 passed, 1 failed" in out
