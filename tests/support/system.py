"""Helpers for tests that drive the running system over HTTP: log in, post feedback, wait."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
from sqlalchemy import text

from tests.conftest import RunningSystem
from voc_platform.db import Database

T = TypeVar("T")


def login(system: RunningSystem, email: str) -> dict[str, str]:
    """Authorization headers for a demo staff member."""
    person = system.staff(email)
    response = httpx.post(
        f"{system.url('notify')}/v1/auth/login", json={"email": email, "password": person["password"]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["expires_in"] > 0
    return {"Authorization": f"Bearer {body['access_token']}"}


def post_feedback(
    system: RunningSystem, body: dict[str, Any], store_id: str = "store-gangnam", **headers: str
) -> httpx.Response:
    key = system.store(store_id)["api_key"]
    return httpx.post(
        f"{system.url('feedback')}/v1/feedback",
        json=body,
        headers={"Authorization": f"Bearer {key}", **headers},
    )


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 30.0,
    interval: float = 0.05,
    sleep: Callable[[float], object] = time.sleep,
) -> T:
    """Poll until `predicate` returns something truthy (event-driven steps: no fixed sleeps).

    `sleep` lets a browser test wait through Playwright so its events keep being dispatched.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        sleep(interval)


def copied_identifiers(system: RunningSystem, feedback_id: str) -> str:
    """What the feedback service copied from the submission (read straight from its database)."""

    async def read() -> str:
        database = Database(system.database_url("feedback"))
        try:
            async with database.session() as session:
                query = text("SELECT customer FROM feedback WHERE id = :id")
                return str((await session.execute(query, {"id": feedback_id})).scalar_one())
        finally:
            await database.dispose()

    # In a thread of its own: a browser test's Playwright already runs a loop in this one.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, read()).result()
