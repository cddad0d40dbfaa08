"""The security suite's system (#21): nats-server and the four services as processes, on their own
databases (SQLite or PostgreSQL, as the suite runs), seeded with the demo data, and the callers
the authorisation matrix and the fuzzer speak as. Store A is store-gangnam (area-seoul), store B
store-busan (area-busan), so the Seoul area manager sees A and not B."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import DatabaseFactory, keep_log
from tests.support.system import wait_for
from voc_cli import demo
from voc_cli.push_emulator import PushEmulator
from voc_cli.supervisor import SERVICES, System, SystemConfig
from voc_platform import identity

DELIVERY_REPORT_TOKEN = "delivery-report-token-security-" + secrets.token_urlsafe(16)
STORE_A = "store-gangnam"
STORE_B = "store-busan"
# Who calls, in the order of the matrix's columns.
CALLERS = (
    "none",  # no Authorization header
    "wrong",  # a bearer token nobody issued
    "foreign",  # a well-formed staff token (cx_admin's claims) signed by another deployment's secret
    "key_a",  # store A's API key
    "key_b",  # store B's API key
    "staff",  # store A's frontline staff member (role staff)
    "staff_a",  # store A's shift lead (notify token)
    "staff_b",  # store B's shift lead
    "manager_a",  # store A's store manager
    "area_a",  # the area manager of A's area (area-seoul)
    "cx_admin",  # the head-office CX admin (a staff role that sees every store)
    "analyst",  # the head-office analyst (read-only, every store, no personal data out)
    "admin",  # the services' admin token
)
STAFF_EMAILS = {
    "staff": "jihoon@gangnam.demo",
    "staff_a": "minji@gangnam.demo",
    "staff_b": "alex@busan.demo",
    "manager_a": "seoyeon@gangnam.demo",
    "area_a": "jimin@area.demo",
    "cx_admin": "cx@hq.demo",
    "analyst": "analyst@hq.demo",
}
FRESH_STAFF_PASSWORD = "matrix-password-3"
COMPLAINT = {
    "store_id": STORE_A,
    "channel": "kiosk",
    "ratings": {"csat": 1},
    "text": "The soup was cold and the table was dirty.",
}


@dataclass
class SecuredSystem:
    system: System
    credentials: dict[str, Any]
    push_emulator: PushEmulator
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    # One client for every call (a new httpx client per call costs tens of ms: its TLS context).
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30, trust_env=False))
    _alerts: list[tuple[str, str]] = field(default_factory=list)  # (alert id, feedback id), unused
    _serial: Iterator[int] = field(default_factory=itertools.count)

    def url(self, service: str) -> str:
        return self.system.url(service)

    @property
    def admin(self) -> dict[str, str]:
        return self.headers["admin"]

    def store(self, store_id: str) -> dict[str, Any]:
        return next(s for s in self.credentials["stores"] if s["id"] == store_id)

    def staff(self, email: str) -> dict[str, Any]:
        return next(s for s in self.credentials["staff"] if s["email"] == email)

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{next(self._serial)}-{secrets.token_hex(3)}"

    loyalty_a: str = "L-matrix-a"
    _shared: dict[str, Any] = field(default_factory=dict)
    _raised: list[str] = field(default_factory=list)  # every feedback and alert id of store A

    def complaint(self) -> dict[str, Any]:
        """A complaint at store A (each its own: a repeat would fold into an open alert)."""
        return {**COMPLAINT, "text": f"{COMPLAINT['text']} ({self.unique('visit')})"}

    def shared_alert(self) -> tuple[str, str]:
        """An alert of store A that calls read but never change: (alert id, its feedback id)."""
        if "alert" not in self._shared:
            self._shared["alert"] = self.raise_alerts(1)[0]
        alert: tuple[str, str] = self._shared["alert"]
        return alert

    def customer_a(self) -> str:
        """A customer whose home store is A (read, never erased)."""
        if "customer" not in self._shared:
            self._shared["customer"] = self.upsert_customer(self.loyalty_a)
        customer_id: str = self._shared["customer"]
        return customer_id

    def markers_of_a(self) -> list[str]:
        """Ids of store A's feedback and alerts: no answer to a caller of store B holds one."""
        return list(self._raised)

    def fresh_alert(self) -> tuple[str, str]:
        """An open alert of store A no call has touched: (alert id, its feedback id)."""
        if not self._alerts:
            self._alerts.extend(self.raise_alerts(12))
        return self._alerts.pop()

    def raise_alerts(self, count: int) -> list[tuple[str, str]]:
        """`count` new complaints at store A, each through the whole system to its own alert."""
        key = {"Authorization": f"Bearer {self.store(STORE_A)['api_key']}"}
        feedback_ids = []
        for _ in range(count):
            r = self.http.post(f"{self.url('feedback')}/v1/feedback", json=self.complaint(), headers=key)
            assert r.status_code == 202, r.text
            feedback_ids.append(r.json()["id"])

        def alerts_of_store_a() -> dict[str, str] | None:
            r = self.http.get(
                f"{self.url('notify')}/v1/alerts",
                params={"limit": 200},
                headers=self.headers["staff_a"],
            )
            assert r.status_code == 200, r.text
            by_feedback = {a["feedback_id"]: a["id"] for a in r.json()["alerts"]}
            return by_feedback if all(f in by_feedback for f in feedback_ids) else None

        by_feedback = wait_for(alerts_of_store_a, timeout=60)
        raised = [(by_feedback[f], f) for f in feedback_ids]
        self._raised.extend(i for pair in raised for i in pair)
        return raised

    def fresh_device(self, caller: str = "staff_a") -> str:
        """A device (push subscription at the emulator) that `caller` registered."""
        r = self.http.post(
            f"{self.url('notify')}/v1/devices",
            json=self.push_emulator.new_subscription(label="matrix"),
            headers=self.headers[caller],
        )
        assert r.status_code == 201, r.text
        device_id: str = r.json()["id"]
        return device_id

    def fresh_api_key(self) -> str:
        """The id of a new API key for store A (to rotate or revoke)."""
        r = self.http.post(
            f"{self.url('feedback')}/v1/admin/api-keys",
            json={"name": self.unique("matrix"), "store_ids": [STORE_A]},
            headers=self.admin,
        )
        assert r.status_code == 201, r.text
        key_id: str = r.json()["id"]
        return key_id

    def fresh_customer(self) -> str:
        """A new customer whose home store is A (to erase)."""
        loyalty_id = self.unique("L-matrix")
        return self.upsert_customer(loyalty_id)

    def upsert_customer(self, loyalty_id: str) -> str:
        customer = {"loyalty_id": loyalty_id, "name": "Matrix Kim", "home_store_id": STORE_A, "tier": "vip"}
        r = self.http.post(
            f"{self.url('profile')}/v1/customers", json={"customers": [customer]}, headers=self.admin
        )
        assert r.status_code == 200, r.text
        customer_id: str = r.json()[0]["customer_id"]
        return customer_id

    def fresh_assignment(self) -> str:
        """An open outreach assignment (#20) of a new store-A customer, given to store A's shift
        lead (staff_a) by the admin token."""
        r = self.http.post(
            f"{self.url('profile')}/v1/outreach/assignments",
            json=self.assignment_body(),
            headers=self.admin,
        )
        assert r.status_code == 201, r.text
        assignment_id: str = r.json()["id"]
        return assignment_id

    def assignment_body(self) -> dict[str, Any]:
        """What assigns a new store-A customer to store A's shift lead."""
        return {
            "customer_id": self.fresh_customer(),
            "list_kind": "churn_risk",
            "store_id": STORE_A,
            "assignee_id": "staff-gn-lead",
        }

    def fresh_target(self) -> dict[str, str]:
        """A store-A target (set by the admin token) for a caller to remove: its query."""
        r = self.http.put(
            f"{self.url('feedback')}/v1/targets",
            json={"store_id": STORE_A, "metric": "resolve_minutes", "value": 45},
            headers=self.admin,
        )
        assert r.status_code == 200, r.text
        return {"store_id": STORE_A, "metric": "resolve_minutes"}

    def fresh_webhook(self) -> str:
        """A new webhook endpoint (a public address: the security system has no webhook
        allowlist), subscribed to a type this suite never makes happen."""
        r = self.http.post(
            f"{self.url('notify')}/v1/admin/webhooks",
            json={"url": f"https://93.184.216.34/{self.unique('matrix')}", "events": ["customer.erased"]},
            headers=self.admin,
        )
        assert r.status_code == 201, r.text
        endpoint_id: str = r.json()["id"]
        return endpoint_id

    def login(self, caller: str) -> dict[str, str]:
        """A new access token of a staff caller (as its Authorization header)."""
        email = STAFF_EMAILS[caller]
        return _login(self.url("notify"), email, self.staff(email)["password"])

    def fresh_staff(self) -> str:
        """A new staff member of store A (to deactivate, activate or log in and out)."""
        staff_id = self.unique("matrix-staff")
        person = {
            "id": staff_id,
            "name": "Matrix Fresh",
            "email": f"{staff_id}@gangnam.demo",
            "password": FRESH_STAFF_PASSWORD,
            "role": "staff",
            "store_ids": [STORE_A],
        }
        r = self.http.put(f"{self.url('notify')}/v1/admin/staff", json=[person], headers=self.admin)
        assert r.status_code == 200, r.text
        return staff_id

    def fresh_refresh_token(self) -> str:
        """A refresh token of a new session of a new staff member (to refresh or log out: a
        logout ends its owner's access tokens, so never a caller's of the matrix)."""
        staff_id = self.fresh_staff()
        r = self.http.post(
            f"{self.url('notify')}/v1/auth/login",
            json={"email": f"{staff_id}@gangnam.demo", "password": FRESH_STAFF_PASSWORD},
        )
        assert r.status_code == 200, r.text
        token: str = r.json()["refresh_token"]
        return token

    def fresh_override(self, staff_id: str) -> str:
        """A one-off override (a past day, so routing is unchanged) of a staff member."""
        r = self.http.post(
            f"{self.url('notify')}/v1/admin/staff/{staff_id}/overrides",
            json={"starts_on": "2020-01-01", "ends_on": "2020-01-01", "on_duty": True, "note": "matrix"},
            headers=self.admin,
        )
        assert r.status_code == 201, r.text
        override_id: str = r.json()["id"]
        return override_id


def _login(notify: str, email: str, password: str) -> dict[str, str]:
    r = httpx.post(f"{notify}/v1/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture(scope="package")
def secured(
    tmp_path_factory: pytest.TempPathFactory, databases: DatabaseFactory, push_emulator: PushEmulator
) -> Iterator[SecuredSystem]:
    data_dir: Path = tmp_path_factory.mktemp("security")
    config = SystemConfig.free_ports(
        data_dir,
        database_urls={name: databases.url(f"security_{name}") for name in SERVICES},
        push_allowed_hosts="127.0.0.1:*",
        restart=False,
        log_format="json",
        # The fuzzer sends thousands of calls from one address with one key: the throttles
        # would answer most of them 429 and hide what lies behind.
        extra_env={
            "VOC_FEEDBACK_RATE_LIMIT_PER_SECOND": "10000",
            "VOC_FEEDBACK_RATE_LIMIT_BURST": "10000",
            "VOC_LOGIN_ADDRESS_BURST": "10000",
            # The bounce pipe's and SMS gateway's credential: the fuzzer reaches that route's work.
            "VOC_DELIVERY_REPORT_TOKEN": DELIVERY_REPORT_TOKEN,
            "VOC_MAIL_FROM": "voc@demo.local",
        },
    )
    system = System(config)
    try:
        system.start(timeout=90)
        urls = {name: system.url(name) for name in SERVICES}
        credentials = demo.seed(
            urls=urls, admin_token=system.admin_token, credentials_path=data_dir / "demo-credentials.json"
        )
        secured = SecuredSystem(system, credentials, push_emulator)
        key = {"Authorization": "Bearer vocsk_" + secrets.token_urlsafe(32)}
        secured.headers = {
            "none": {},
            "wrong": key,
            "admin": {"Authorization": f"Bearer {system.admin_token}"},
        }
        for caller, store_id in (("key_a", STORE_A), ("key_b", STORE_B)):
            secured.headers[caller] = {"Authorization": f"Bearer {secured.store(store_id)['api_key']}"}
        for caller, _email in STAFF_EMAILS.items():
            secured.headers[caller] = secured.login(caller)
        # The CX admin's claims, signed with a secret this deployment does not have.
        foreign = identity.issue_token(
            identity.Principal("staff-cx", "cx_admin", (), None), secret=secrets.token_urlsafe(48), ttl=600
        )
        secured.headers["foreign"] = {"Authorization": f"Bearer {foreign}"}
        yield secured
        secured.http.close()
    finally:
        system.stop()
        for name in SERVICES:
            keep_log(system.log_path(name), f"security-{name}")
