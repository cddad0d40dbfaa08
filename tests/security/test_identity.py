"""One staff identity across the four services (#20): a store manager's token reads only their
store's numbers, lists and customers (the scope is in the query: another store's id is 403, not
an empty answer); a deactivated, logged-out or re-passworded staff member's tokens stop working
on every service within the revocation bound; every service's audit log names the token's
actor, never a self-declared one. Real services as processes, a real nats-server, SQLite or
PostgreSQL as the suite runs."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.security.conftest import STORE_A, STORE_B, SecuredSystem
from tests.security.test_authz_matrix import playbook
from tests.support.system import wait_for
from voc_platform import identity

# Bound on a revoked token still working anywhere (DESIGN: within a minute).
REVOCATION_BOUND_SECONDS = 60.0


def _day(offset: int) -> str:
    return datetime.fromtimestamp(time.time() + offset * 86400, UTC).date().isoformat()


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def both_stores(secured: SecuredSystem) -> dict[str, list[str]]:
    """Feedback at store A and store B, and a VIP customer of each: ids by store."""
    ids: dict[str, list[str]] = {STORE_A: [], STORE_B: []}
    for store, caller in ((STORE_A, "key_a"), (STORE_B, "key_b")):
        for n in range(2):
            body = {**secured.complaint(), "store_id": store, "text": f"Cold soup, dirty table ({store} {n})"}
            r = secured.http.post(
                f"{secured.url('feedback')}/v1/feedback", json=body, headers=secured.headers[caller]
            )
            assert r.status_code == 202, r.text
            ids[store].append(r.json()["id"])
        customer = {
            "loyalty_id": secured.unique(f"L-{store}"),
            "home_store_id": store,
            "tier": "vip",
            "name": "Kim",
        }
        r = secured.http.post(
            f"{secured.url('profile')}/v1/customers", json={"customers": [customer]}, headers=secured.admin
        )
        assert r.status_code == 200, r.text
        ids[store].append(r.json()[0]["customer_id"])
    return ids


def test_a_store_managers_feedback_reads_hold_only_their_store(
    secured: SecuredSystem, both_stores: dict[str, list[str]]
) -> None:
    feedback, mgr = secured.url("feedback"), secured.headers["manager_a"]
    period = {"from": _day(-300), "to": _day(2)}  # an export covers at most 366 days
    analytics = secured.http.get(f"{feedback}/v1/analytics", params=period, headers=mgr)
    assert analytics.status_code == 200, analytics.text
    assert {s["store_id"] for s in analytics.json()["by_store"]} == {STORE_A}
    listed = secured.http.get(f"{feedback}/v1/feedback", params={"limit": 500}, headers=mgr).json()["items"]
    assert {i["store_id"] for i in listed} == {STORE_A}
    assert set(both_stores[STORE_A][:2]) <= {i["id"] for i in listed}
    exported = secured.http.get(f"{feedback}/v1/feedback/export.csv", params=period, headers=mgr)
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
    assert rows and {r["store_id"] for r in rows} == {STORE_A}
    cases = secured.http.get(f"{feedback}/v1/analytics/open-cases", headers=mgr).json()["cases"]
    assert {c["store_id"] for c in cases} <= {STORE_A}
    # Another store or another area, asked for by name: 403 naming the field, never an empty 200.
    for path, extra in (
        ("/v1/analytics", period),
        ("/v1/feedback", {}),
        ("/v1/feedback/export.csv", period),
        ("/v1/analytics/open-cases", {}),
    ):
        refused = _problem(
            secured.http.get(f"{feedback}{path}", params={**extra, "store_id": STORE_B}, headers=mgr), 403
        )
        assert refused["errors"][0]["field"] == "query.store_id", refused
        _problem(
            secured.http.get(f"{feedback}{path}", params={**extra, "area_id": "area-busan"}, headers=mgr), 403
        )
    # Another store's item is answered as missing.
    _problem(secured.http.get(f"{feedback}/v1/feedback/{both_stores[STORE_B][0]}", headers=mgr), 404)
    # The area manager reads their area (store A's, not B's); cx_admin and the analyst read all.
    area = secured.headers["area_a"]
    by_store = secured.http.get(f"{feedback}/v1/analytics", params=period, headers=area).json()["by_store"]
    assert STORE_A in {s["store_id"] for s in by_store} and STORE_B not in {s["store_id"] for s in by_store}
    assert (
        secured.http.get(
            f"{feedback}/v1/analytics", params={**period, "area_id": "area-seoul"}, headers=area
        ).status_code
        == 200
    )
    _problem(secured.http.get(f"{feedback}/v1/analytics", params={"store_id": STORE_B}, headers=area), 403)
    for caller in ("cx_admin", "analyst"):
        everything = secured.http.get(
            f"{feedback}/v1/analytics", params=period, headers=secured.headers[caller]
        )
        assert {STORE_A, STORE_B} <= {s["store_id"] for s in everything.json()["by_store"]}


def test_the_analyst_reads_feedback_without_the_personal_data_typed_into_it(secured: SecuredSystem) -> None:
    """The analyst "takes no personal data out" (API.md): the phone number and e-mail a customer
    typed are masked in the item, the list and the open cases, and no customer id is given; a
    manager with the customer records reads them whole (security review)."""
    feedback = secured.url("feedback")
    typed = f"Call me back on 010-9999-8888 or evil@victim-mail.com ({secured.unique('pii')})"
    body = {**secured.complaint(), "text": typed, "customer": {"loyalty_id": secured.loyalty_a}}
    r = secured.http.post(f"{feedback}/v1/feedback", json=body, headers=secured.headers["key_a"])
    assert r.status_code == 202, r.text
    item_id = r.json()["id"]
    analyst, manager = secured.headers["analyst"], secured.headers["manager_a"]

    def linked() -> dict[str, Any] | None:  # profile links the customer a moment later
        item: dict[str, Any] = secured.http.get(f"{feedback}/v1/feedback/{item_id}", headers=manager).json()
        return item if item.get("customer_id") else None

    whole = wait_for(linked)
    assert whole["text"] == typed
    seen = secured.http.get(f"{feedback}/v1/feedback/{item_id}", headers=analyst).json()
    listed = secured.http.get(f"{feedback}/v1/feedback", params={"limit": 500}, headers=analyst).json()[
        "items"
    ]
    cases = secured.http.get(
        f"{feedback}/v1/analytics/open-cases", params={"limit": 200, "store_id": STORE_A}, headers=analyst
    ).json()["cases"]
    case = [c["text"] for c in cases if c["id"] == item_id]
    assert case, "the new case is among store A's open cases"
    texts = [seen["text"], next(i["text"] for i in listed if i["id"] == item_id), *case]
    for text in texts:
        assert "9999-8888" not in text and "victim-mail" not in text and "***8888" in text, text
    assert seen["customer_id"] is None and all(i["customer_id"] is None for i in listed)


def test_a_store_managers_outreach_lists_and_customers_are_their_stores(
    secured: SecuredSystem, both_stores: dict[str, list[str]]
) -> None:
    profile, mgr = secured.url("profile"), secured.headers["manager_a"]
    customer_a, customer_b = both_stores[STORE_A][2], both_stores[STORE_B][2]
    listed = secured.http.get(f"{profile}/v1/customers", params={"signal": "vip", "limit": 500}, headers=mgr)
    ids = {c["id"] for c in listed.json()["customers"]}
    assert customer_a in ids and customer_b not in ids
    exported = secured.http.get(
        f"{profile}/v1/customers", params={"signal": "vip", "format": "csv"}, headers=mgr
    )
    assert customer_a in exported.text and customer_b not in exported.text
    for params in (
        {"signal": "vip", "store_id": STORE_B},
        {"signal": "vip", "format": "csv", "store_id": STORE_B},
    ):
        _problem(secured.http.get(f"{profile}/v1/customers", params=params, headers=mgr), 403)
    _problem(
        secured.http.get(f"{profile}/v1/reports/revisit", params={"store_id": STORE_B}, headers=mgr), 403
    )
    # A customer of another store is answered as missing; their own store's as stored.
    for suffix in ("", "/context", "/timeline", "/merges"):
        _problem(secured.http.get(f"{profile}/v1/customers/{customer_b}{suffix}", headers=mgr), 404)
        assert (
            secured.http.get(f"{profile}/v1/customers/{customer_a}{suffix}", headers=mgr).status_code == 200
        )
    # cx_admin sees both; the analyst no customer at all (personal data).
    every = secured.http.get(
        f"{profile}/v1/customers", params={"signal": "vip", "limit": 500}, headers=secured.headers["cx_admin"]
    )
    assert {customer_a, customer_b} <= {c["id"] for c in every.json()["customers"]}
    _problem(
        secured.http.get(f"{profile}/v1/customers/{customer_a}", headers=secured.headers["analyst"]), 403
    )


def _fresh_staff(secured: SecuredSystem, role: str) -> tuple[str, dict[str, Any]]:
    staff_id = secured.unique(f"id-{role}")
    person = {
        "id": staff_id,
        "name": "Identity Test",
        "email": f"{staff_id}@hq.demo",
        "password": "identity-password-1",
        "role": role,
        "store_ids": [STORE_A] if role != "cx_admin" else [],
    }
    r = secured.http.put(f"{secured.url('notify')}/v1/admin/staff", json=[person], headers=secured.admin)
    assert r.status_code == 200, r.text
    return staff_id, person


def _login(secured: SecuredSystem, person: dict[str, Any]) -> dict[str, str]:
    r = secured.http.post(
        f"{secured.url('notify')}/v1/auth/login",
        json={"email": person["email"], "password": person["password"]},
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _every_service(secured: SecuredSystem) -> dict[str, Callable[[dict[str, str]], httpx.Response]]:
    """One call per service that a cx_admin's token may make."""
    return {
        "feedback": lambda h: secured.http.get(f"{secured.url('feedback')}/v1/analytics", headers=h),
        "profile": lambda h: secured.http.get(f"{secured.url('profile')}/v1/customers?signal=vip", headers=h),
        "actions": lambda h: secured.http.get(f"{secured.url('actions')}/v1/audit?limit=1", headers=h),
        "notify": lambda h: secured.http.get(f"{secured.url('notify')}/v1/alerts?limit=1", headers=h),
    }


def _refused_everywhere_within_the_bound(secured: SecuredSystem, token: dict[str, str]) -> float:
    """Seconds until every service answers the token 401 (each polled, no fixed sleep)."""
    started = time.monotonic()
    calls = _every_service(secured)

    def all_refuse() -> bool | None:
        answers = {name: call(token).status_code for name, call in calls.items()}
        assert set(answers.values()) <= {200, 401}, answers
        return True if set(answers.values()) == {401} else None

    wait_for(all_refuse, timeout=REVOCATION_BOUND_SECONDS)
    return time.monotonic() - started


@pytest.mark.parametrize("how", ["deactivate", "password_set_anew", "logout"])
def test_a_revoked_staff_members_token_stops_working_on_every_service(
    secured: SecuredSystem, how: str
) -> None:
    staff_id, person = _fresh_staff(secured, "cx_admin")
    token = _login(secured, person)
    second = _login(secured, person)  # another phone of theirs
    for name, call in _every_service(secured).items():
        assert call(token).status_code == 200, name
    if how == "deactivate":
        r = secured.http.post(
            f"{secured.url('notify')}/v1/admin/staff/{staff_id}/deactivate", headers=secured.admin
        )
    elif how == "password_set_anew":
        changed = {**person, "password": "identity-password-2"}
        r = secured.http.put(f"{secured.url('notify')}/v1/admin/staff", json=[changed], headers=secured.admin)
    else:
        r = secured.http.post(f"{secured.url('notify')}/v1/auth/logout", headers=token)
    assert r.status_code in (200, 204), r.text
    elapsed = _refused_everywhere_within_the_bound(secured, token)
    assert elapsed < REVOCATION_BOUND_SECONDS
    # Every token issued before the revocation went with it, not only the one that logged out.
    assert _every_service(secured)["profile"](second).status_code == 401
    if how == "deactivate":  # and no new one is issued
        login = secured.http.post(
            f"{secured.url('notify')}/v1/auth/login",
            json={"email": person["email"], "password": person["password"]},
        )
        _problem(login, 401)
    else:  # a new login works again everywhere
        password = "identity-password-2" if how == "password_set_anew" else person["password"]
        fresh = _login(secured, {**person, "password": password})
        for name, call in _every_service(secured).items():
            assert call(fresh).status_code == 200, name


def test_a_forged_or_foreign_token_is_401_everywhere(secured: SecuredSystem) -> None:
    token = secured.headers["manager_a"]["Authorization"].removeprefix("Bearer ")
    header, _payload, signature = token.split(".")
    # The manager's token with its role raised to cx_admin: the signature no longer matches.
    claims = identity.read_token(token, secret=secured.system.secrets["jwt_secret"])
    forged_payload = identity.issue_token(
        identity.Principal(claims.staff_id, "cx_admin", (), None), secret="x" * 48, ttl=600
    ).split(".")[1]
    forged = {"Authorization": f"Bearer {header}.{forged_payload}.{signature}"}
    expired = identity.issue_token(
        claims, secret=secured.system.secrets["jwt_secret"], ttl=60, now=time.time() - 3600
    )
    for headers in (forged, secured.headers["foreign"], {"Authorization": f"Bearer {expired}"}):
        for call in _every_service(secured).values():
            _problem(call(headers), 401)


def _entries(secured: SecuredSystem, service: str, **params: Any) -> list[dict[str, Any]]:
    r = secured.http.get(
        f"{secured.url(service)}/v1/audit", params=params, headers=secured.headers["cx_admin"]
    )
    assert r.status_code == 200, r.text
    entries: list[dict[str, Any]] = r.json()["entries"]
    return entries


def test_every_services_audit_log_names_the_tokens_actor(
    secured: SecuredSystem, both_stores: dict[str, list[str]]
) -> None:
    cx = {**secured.headers["cx_admin"], "X-Voc-Actor": "someone-else"}  # ignored beside a staff token
    # feedback: a key made with cx_admin's token
    created = secured.http.post(
        f"{secured.url('feedback')}/v1/admin/api-keys",
        json={"name": secured.unique("audit"), "store_ids": [STORE_A]},
        headers=cx,
    )
    assert created.status_code == 201, created.text
    key_id = created.json()["id"]
    [made] = _entries(secured, "feedback", action="api_key.create", target=f"api_key:{key_id}")
    assert (made["actor"], made["actor_role"], made["on_behalf_of"]) == ("staff:staff-cx", "cx_admin", None)
    # profile: the store manager's read of a customer's context
    customer_a = both_stores[STORE_A][2]
    assert (
        secured.http.get(
            f"{secured.url('profile')}/v1/customers/{customer_a}/context",
            headers=secured.headers["manager_a"],
        ).status_code
        == 200
    )
    reads = _entries(secured, "profile", actor="staff:staff-gn-mgr", target=f"customer:{customer_a}")
    assert "read_context" in {e["action"] for e in reads}
    # notify: the manager's read of an alert (its customer context), and a directory change
    alert_id, _ = secured.shared_alert()
    assert (
        secured.http.get(
            f"{secured.url('notify')}/v1/alerts/{alert_id}", headers=secured.headers["manager_a"]
        ).status_code
        == 200
    )
    opened = wait_for(
        lambda: _entries(secured, "notify", action="alert.read", actor="staff:staff-gn-mgr") or None
    )
    assert opened[0]["target"] == f"alert:{alert_id}"
    # The admin token's caller may say who they are: kept as said, beside "admin".
    admin_as = {**secured.admin, "X-Voc-Actor": "ops.kim"}
    assert (
        secured.http.post(
            f"{secured.url('notify')}/v1/admin/staff/staff-gn-lead/unlock", headers=admin_as
        ).status_code
        == 204
    )
    [unlock] = _entries(secured, "notify", action="staff.unlock", actor="admin", limit=1)
    assert (unlock["on_behalf_of"], unlock["target"]) == ("ops.kim", "staff:staff-gn-lead")
    # actions: a publication by cx_admin
    published = secured.http.put(
        f"{secured.url('actions')}/v1/playbooks", json=playbook(secured).json, headers=cx
    )
    assert published.status_code == 200, published.text
    [publication] = _entries(secured, "actions", action="playbooks.publish", limit=1)
    assert publication["actor"] == "staff:staff-cx"
    # Filters by period; a bad one names the field; only cx_admin (and the admin token) read it.
    now = time.time()
    assert _entries(secured, "feedback", action="api_key.create", **{"from": now + 3600}) == []
    assert made in _entries(
        secured, "feedback", action="api_key.create", **{"from": now - 3600, "to": now + 60}
    )
    bad = secured.http.get(
        f"{secured.url('feedback')}/v1/audit",
        params={"from": "yesterday"},
        headers=secured.headers["cx_admin"],
    )
    assert _problem(bad, 422)["errors"][0]["field"] == "query.from"
    for caller in ("manager_a", "analyst"):
        _problem(secured.http.get(f"{secured.url('profile')}/v1/audit", headers=secured.headers[caller]), 403)
