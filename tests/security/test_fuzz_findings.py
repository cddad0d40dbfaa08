"""What the fuzzer found (#21), pinned against the running system: answers that were server errors
are problem+json 4xx now, on SQLite and on PostgreSQL alike. (The export's findings are pinned
beside the export's other tests, `tests/feedback/test_listing.py`.)"""

from __future__ import annotations

from typing import Any

import httpx

from tests.security.conftest import STORE_A, SecuredSystem


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body


def test_a_staff_email_someone_else_has_is_409(secured: SecuredSystem) -> None:
    """It was an IntegrityError on the unique e-mail (500)."""
    taken = {
        "id": "someone-new",
        "name": "Someone New",
        "email": "Minji@Gangnam.demo",  # the Gangnam shift lead's, in other case
        "password": "someone-password-1",
        "role": "staff",
        "store_ids": [STORE_A],
    }
    r = httpx.put(f"{secured.url('notify')}/v1/admin/staff", json=[taken], headers=secured.admin)
    assert problem(r, 409)["errors"] == [{"field": "body.0.email", "message": "used by another staff member"}]


def test_nul_characters_are_422_in_every_service(secured: SecuredSystem) -> None:
    """PostgreSQL refuses U+0000 in text (SQLite stores it): a NUL in a path, a query or a body
    was a 500 there. Refused before any work, on both."""
    feedback, notify = secured.url("feedback"), secured.url("notify")
    profile, actions = secured.url("profile"), secured.url("actions")
    key_a, admin, staff_a = secured.headers["key_a"], secured.admin, secured.headers["staff_a"]
    refused = {
        "intake body": httpx.post(
            f"{feedback}/v1/feedback",
            json={"store_id": STORE_A, "channel": "app", "ratings": {"csat": 2}, "touchpoint": "table\x00"},
            headers=key_a,
        ),
        "feedback path": httpx.get(f"{feedback}/v1/feedback/abc%00def", headers=admin),
        "feedback query": httpx.get(f"{feedback}/v1/feedback?cursor=%00", headers=key_a),
        "login body": httpx.post(f"{notify}/v1/auth/login", json={"email": "a\x00@x.demo", "password": "x"}),
        "alert path": httpx.get(f"{notify}/v1/alerts/%00", headers=staff_a),
        "staff csv": httpx.post(
            f"{notify}/v1/admin/staff:import",
            content=b"id,name,email,password,role\nnul,N\x00L,nul@x.demo,nul-password-1,staff\n",
            headers={**admin, "Content-Type": "text/csv"},
        ),
        "customer body": httpx.post(
            f"{profile}/v1/customers", json={"customers": [{"loyalty_id": "L-\x00"}]}, headers=admin
        ),
        "customer import (streamed)": httpx.post(
            f"{profile}/v1/customers:import",
            content=b"loyalty_id,name\nL-nul,N\x00L\n",
            headers={**admin, "Content-Type": "text/csv"},
        ),
        "lookup body": httpx.post(
            f"{actions}/v1/plans:lookup",
            json={"feedback": {"category": "other", "touchpoint": "\x00"}},
            headers=admin,
        ),
    }
    for where, response in refused.items():
        body = problem(response, 422)
        assert body["errors"][0]["message"] == "contains U+0000", (where, body)
    # The refused import wrote nothing: the customer it named is new to an upsert.
    upsert = httpx.post(
        f"{profile}/v1/customers", json={"customers": [{"loyalty_id": "L-nul"}]}, headers=admin
    )
    assert upsert.status_code == 200 and upsert.json()[0]["created"] is True, upsert.text
    # A backslash followed by "u0000" is text, not a NUL: it is taken.
    r = httpx.post(
        f"{feedback}/v1/feedback",
        json={"store_id": STORE_A, "channel": "app", "ratings": {"csat": 4}, "text": "path C:\\u0000 ok"},
        headers=key_a,
    )
    assert r.status_code == 202, r.text
