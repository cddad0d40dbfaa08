"""One version everywhere it is declared, the license the packages claim, and a changelog entry
for the version (#22 §3)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def pyprojects() -> list[Path]:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members = [
        p for pattern in root["tool"]["uv"]["workspace"]["members"] for p in sorted(ROOT.glob(pattern))
    ]
    return [
        ROOT / "pyproject.toml",
        *(m / "pyproject.toml" for m in members if (m / "pyproject.toml").is_file()),
    ]


def version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def test_every_package_and_image_carries_the_same_version() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", version())
    versions = {
        str(p.relative_to(ROOT)): tomllib.loads(p.read_text())["project"]["version"] for p in pyprojects()
    }
    assert len(versions) == 9 and set(versions.values()) == {version()}, versions
    tags = re.findall(r"image: frontline-voc/\w+:(\S+)", (ROOT / "deploy/compose/compose.yaml").read_text())
    for kustomization in (ROOT / "deploy/k8s").rglob("kustomization.yaml"):
        tags += [str(i["newTag"]) for i in yaml.safe_load(kustomization.read_text()).get("images", [])]
    assert len(tags) >= 8 and set(tags) == {version()}, tags
    chart = yaml.safe_load((ROOT / "deploy/helm/frontline-voc/Chart.yaml").read_text())
    assert (str(chart["version"]), str(chart["appVersion"])) == (version(), version())
    production = yaml.safe_load((ROOT / "deploy/helm/frontline-voc/ci/production-values.yaml").read_text())
    assert str(production["image"]["tag"]) == version()
    from voc_platform.http import VERSION

    assert version() == VERSION  # what the services' OpenAPI documents say


def test_the_changelog_starts_with_this_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    first = re.search(r"^## (\S+) - (\d{4}-\d{2}-\d{2})$", text, re.MULTILINE)
    assert first is not None and first.group(1) == version()


def test_the_license_is_the_apache_license_the_packages_declare() -> None:
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text.split()) > 1500  # the full text


def test_the_deployments_replicate_the_streams() -> None:
    """Known gap closed: the streams are created with three replicas in deploy/."""
    config = next(
        d
        for d in yaml.safe_load_all((ROOT / "deploy/k8s/base/config.yaml").read_text())
        if d["metadata"]["name"] == "voc-config"
    )
    assert config["data"]["VOC_NATS_STREAM_REPLICAS"] == "3"
    compose = yaml.safe_load((ROOT / "deploy/compose/compose.yaml").read_text())
    assert compose["x-env"]["VOC_NATS_STREAM_REPLICAS"] == "3"
