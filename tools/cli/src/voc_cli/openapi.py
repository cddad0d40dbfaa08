"""`voc openapi`: the four services' OpenAPI documents, as their apps serve them at
`/openapi.json`, written to docs/openapi/<service>.json for store-app and integration developers
(`make openapi`), and checked for drift by `make lint` (`voc openapi --check`).

The apps are built as `python -m voc_<service>` builds them (`build_app`), without opening a
database, with neutral settings: nothing of the machine or its environment enters a document,
so the same code always gives the same bytes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from fastapi import FastAPI

SERVICES = ("feedback", "profile", "actions", "notify")
DOCS = Path(__file__).resolve().parents[4] / "docs" / "openapi"


def apps() -> dict[str, FastAPI]:
    """Each service's app as `build_app` makes it for the process (no database is opened)."""
    from voc_actions import api as actions_api
    from voc_actions.live import LiveLibrary
    from voc_actions.playbooks import Library
    from voc_actions.settings import Settings as ActionsSettings
    from voc_feedback import api as feedback_api
    from voc_feedback.settings import Settings as FeedbackSettings
    from voc_notify import api as notify_api
    from voc_notify.settings import Settings as NotifySettings
    from voc_notify.stream import AlertBroker
    from voc_notify.webpush import PushAllowlist, VapidKeys
    from voc_platform.db import Database
    from voc_profile import api as profile_api
    from voc_profile.settings import Settings as ProfileSettings

    database = Database("sqlite:///:memory:")
    common: dict[str, Any] = {"VOC_ENV": "test", "admin_token": "route-table-admin-token"}
    return {
        "feedback": feedback_api.build_app(FeedbackSettings(**common), database),
        "profile": profile_api.build_app(ProfileSettings(**common), database),
        "actions": actions_api.build_app(ActionsSettings(**common), database, LiveLibrary(library=Library())),
        "notify": notify_api.build_app(
            NotifySettings(**common),
            database,
            vapid=VapidKeys.generate(),
            allowlist=PushAllowlist(),
            broker=AlertBroker(),
        ),
    }


def documents() -> dict[str, str]:
    """service -> its OpenAPI document as committed (indented JSON, one newline at the end)."""
    return {
        name: json.dumps(app.openapi(), indent=2, ensure_ascii=False) + "\n" for name, app in apps().items()
    }


def stale(directory: Path = DOCS) -> list[str]:
    """The services whose committed document differs from what their app serves."""
    found = []
    for name, text in documents().items():
        path = directory / f"{name}.json"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            found.append(name)
    return found


def write(directory: Path = DOCS) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in documents().items():
        path = directory / f"{name}.json"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def run(*, out: Path, check: bool) -> int:
    if check:
        drifted = stale(out)
        if drifted:
            print(
                f"openapi: {', '.join(drifted)} differ from {out}; run 'make openapi' and commit them",
                file=sys.stderr,
            )
            return 1
        print("openapi: documents up to date")
        return 0
    for path in write(out):
        print(f"wrote {path}")
    return 0
