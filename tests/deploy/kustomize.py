"""A small kustomize renderer for the subset deploy/k8s uses (no kustomize binary here):
`resources` (files and directories), `namespace`, `labels` (pairs, without selectors),
`images` (newName / newTag), `replicas`, and `patches` (strategic merge by path + target:
maps merge, lists of named items merge by `name`)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Object = dict[str, Any]
CLUSTER_SCOPED = {"Namespace"}


def load_documents(path: Path) -> list[Object]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(i, dict) and "name" in i for i in [*base, *patch])
    ):
        by_name = {item["name"]: item for item in base}
        out = [_merge(by_name[i["name"]], i) if i["name"] in by_name else i for i in patch]
        patched = {i["name"] for i in patch}
        return [item for item in base if item["name"] not in patched] + out
    return copy.deepcopy(patch)


def _containers(obj: Object) -> list[Object]:
    spec = obj.get("spec", {})
    pod = spec.get("jobTemplate", {}).get("spec", spec).get("template", {}).get("spec", {})
    return [*pod.get("containers", []), *pod.get("initContainers", [])]


def render(directory: Path) -> list[Object]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    objects: list[Object] = []
    for resource in kustomization.get("resources", []):
        path = directory / resource
        objects += render(path) if path.is_dir() else load_documents(path)
    objects = copy.deepcopy(objects)
    for patch in kustomization.get("patches", []):
        target = patch["target"]
        body = load_documents(directory / patch["path"])[0]
        matched = [
            o for o in objects if o["kind"] == target["kind"] and o["metadata"]["name"] == target["name"]
        ]
        if not matched:
            raise ValueError(f"patch {patch['path']} matches nothing")
        for obj in matched:
            obj.update(_merge(obj, body))
    for change in kustomization.get("replicas", []):
        matched = [
            o for o in objects if o["metadata"]["name"] == change["name"] and "replicas" in o.get("spec", {})
        ]
        if not matched:
            raise ValueError(f"replicas: no workload {change['name']}")
        for obj in matched:
            obj["spec"]["replicas"] = change["count"]
    for image in kustomization.get("images", []):
        for obj in objects:
            for container in _containers(obj):
                name, _, tag = container["image"].partition(":")
                if name == image["name"]:
                    new_name = image.get("newName", name)
                    new_tag = image.get("newTag", tag)
                    container["image"] = f"{new_name}:{new_tag}" if new_tag else new_name
    for label in kustomization.get("labels", []):
        for obj in objects:
            obj["metadata"].setdefault("labels", {}).update(label["pairs"])
    if "namespace" in kustomization:
        for obj in objects:
            if obj["kind"] == "Namespace":
                obj["metadata"]["name"] = kustomization["namespace"]
            elif obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = kustomization["namespace"]
    return objects
