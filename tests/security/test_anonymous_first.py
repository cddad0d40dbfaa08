"""A request without credentials is 401 on every secured operation, whatever else is wrong with
its fields (schemathesis' missing-header and anonymous runs): an anonymous caller learns nothing
about the route's validation or cursor format. (A body that is not JSON at all is 400 first, and
one over the size limit 413: those are read before any route runs.) With credentials, a
malformed request is still refused before a rate-limit token is spent (`deps.Reader`)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.security.conftest import SecuredSystem

SERVICES = ("feedback", "profile", "actions", "notify")
JUNK_QUERY = {"cursor": "!!", "limit": "-1", "category": "a", "signal": "vip", "store_id": "a b", "to": "x"}
JUNK_BODY = {"junk": True}


def secured_operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(method, path) of the operations that need credentials (security named, not optional)."""
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            security = operation.get("security")
            if security and {} not in security:
                found.append((method.upper(), path))
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_no_credentials_is_401_before_anything_else(secured: SecuredSystem, service: str) -> None:
    base = secured.url(service)
    document = secured.http.get(f"{base}/openapi.json").json()
    operations = secured_operations(document)
    assert operations, service
    answers: dict[str, int] = {}
    for method, path in operations:
        url = base + re.sub(r"\{[^}]+\}", "x", path)
        body = None if method in ("GET", "DELETE") else JUNK_BODY
        response = secured.http.request(method, url, params=JUNK_QUERY, json=body)
        answers[f"{method} {path}"] = response.status_code
    refused_otherwise = sorted(f"{k}: {v}" for k, v in answers.items() if v != 401)
    assert refused_otherwise == [], refused_otherwise


@pytest.mark.parametrize(
    ("service", "method", "path", "params", "body"),
    [
        ("feedback", "POST", "/v1/feedback", None, {"store_id": "store-gangnam", "channel": "app"}),
        ("feedback", "GET", "/v1/feedback", {"category": "a"}, None),
        ("feedback", "GET", "/v1/feedback/export.csv", {"since": "yesterday"}, None),
        ("profile", "GET", "/v1/customers", {"signal": "vip", "cursor": "0"}, None),
        ("profile", "POST", "/v1/visits", None, {"store_id": "store-gangnam"}),
    ],
)
def test_the_reported_anonymous_calls_are_401(
    secured: SecuredSystem, service: str, method: str, path: str, params: Any, body: Any
) -> None:
    """The calls schemathesis reported answering anonymous callers 422 or 400."""
    answer = secured.http.request(method, secured.url(service) + path, params=params, json=body)
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_a_body_that_is_not_json_is_400_whoever_sends_it(secured: SecuredSystem) -> None:
    """The one thing said before the credentials are checked, and all it says is "not JSON"."""
    answer = secured.http.post(
        secured.url("feedback") + "/v1/feedback",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 400 and answer.json()["detail"] == "The body is not valid JSON.", answer.text
