"""The authorisation matrix (#21, #20): every route of every service, read from the apps' own route
tables, called by every kind of caller (no token, a made-up one, a staff token signed by another
deployment, store keys, a staff token of every role, the admin token), answers exactly the
status one table below says.

A route without a row fails (`test_every_route_has_a_row`), and so does a row whose route is gone.
Path parameters name real resources of store A; a caller of store B gets 404 (another store's
resource is answered as if it did not exist) and never sees store A's ids in an answer. A call
that changes what it names (ack, revoke, erase, delete) gets a fresh resource per caller, so the
order of the columns does not matter."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from tests.security.conftest import CALLERS, STAFF_EMAILS, STORE_A, SecuredSystem
from voc_cli import demo, openapi
from voc_platform import taxonomy

SERVICE_NAMES = ("feedback", "profile", "actions", "notify")


def route_tables() -> dict[str, FastAPI]:
    """Each service's app as `build_app` makes it for the process (no database is opened)."""
    return openapi.apps()


def every_route() -> list[str]:
    """`<service> <METHOD> <path>` of every route, as the app serves it (routers included with
    their prefixes; HEAD, which Starlette adds beside each GET of a plain route and answers like
    it, left out)."""
    found = set()
    for service, app in route_tables().items():
        for route in iter_route_contexts(app.routes):
            assert route.path and route.methods, route
            for method in route.methods:
                if method != "HEAD":
                    found.add(f"{service} {method} {route.path}")
    return sorted(found)


@dataclass(frozen=True)
class Call:
    """What a cell sends besides the caller's token."""

    path: dict[str, str] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    content: bytes | None = None
    content_type: str | None = None


Build = Callable[[SecuredSystem], Call]


@dataclass(frozen=True)
class Row:
    statuses: str  # one status per caller, in CALLERS order
    build: Build = lambda _: Call()
    fresh_login: bool = False  # the call ends the caller's tokens (logout): a new one per call


PUBLIC = Row(" ".join(["200"] * len(CALLERS)))


def row(staff: str, *, admin: int, keys: str = "401 401", build: Build = lambda _: Call()) -> Row:
    """A route for staff tokens and the admin token: none, a made-up token and a foreign-signed
    staff token get 401, store keys `keys`; `staff` for staff, staff_a, staff_b, manager_a,
    area_a, cx_admin and analyst; `admin` for the admin token."""
    return Row(f"401 401 401 {keys} {staff} {admin}", build)


def cx_only(ok: int, build: Build = lambda _: Call()) -> Row:
    """Admin routes: the cx_admin role and the admin token; 403 for every other role."""
    return row(f"403 403 403 403 403 {ok} 403", admin=ok, build=build)


def staff_only(statuses: str, build: Build = lambda _: Call(), *, fresh_login: bool = False) -> Row:
    """A staff member's own routes (notify): 401 for the admin token and store keys too."""
    return Row(f"401 401 401 401 401 {statuses} 401", build, fresh_login)


def feedback_of_a(s: SecuredSystem) -> Call:
    return Call(path={"feedback_id": s.shared_alert()[1]})


def alert_of_a(s: SecuredSystem) -> Call:
    return Call(path={"alert_id": s.shared_alert()[0]})


def fresh_alert_of_a(s: SecuredSystem, body: Any = None) -> Call:
    return Call(path={"alert_id": s.fresh_alert()[0]}, json=body)


def webhook(s: SecuredSystem) -> Call:
    return Call(path={"endpoint_id": s.fresh_webhook()})


def customer_of_a(s: SecuredSystem) -> Call:
    return Call(path={"customer_id": s.customer_a()})


PERIOD = {"from": "2026-01-01", "to": "2026-12-31"}
UNKNOWN_MODEL = {"version": "hashlr-2-0000000000"}
STAFF_A_ID = "staff-gn-lead"
NOTIFY_STORE_A = next(s for s in demo.STORES if s["id"] == STORE_A)  # as seeded: a re-put changes nothing
STORE_A_RECORD = {k: NOTIFY_STORE_A[k] for k in ("id", "name", "area_id")}
MATRIX_STAFF = {
    "id": "matrix-staff",
    "name": "Matrix Staff",
    "email": "matrix@gangnam.demo",
    "password": "matrix-password-1",
    "role": "staff",
    "store_ids": [STORE_A],
}
MATRIX_STAFF_CSV = (
    b"id,name,email,password,role,store_ids\n"
    b"matrix-csv,Matrix Csv,matrix-csv@gangnam.demo,matrix-password-2,staff,store-gangnam\n"
)


def playbook(s: SecuredSystem) -> Call:
    playbook_id = s.unique("matrix")
    # A playbook of its own touchpoint, which no feedback here carries: published, never matched.
    yaml = (
        f"id: {playbook_id}\nversion: 1\ntitle: {{ko: 매트릭스, en: Matrix}}\n"
        f"when:\n  category: food_quality\n  touchpoint: {playbook_id}\npriority: normal\n"
        "notify: {roles: [shift_lead]}\nescalate:\n  - {after: 5m, roles: [store_manager]}\n"
        "sla: {ack: 5m, resolve: 1h}\nsteps:\n  - {ko: 사과한다, en: Apologise, role: shift_lead}\n"
        "script: {ko: 죄송합니다., en: We are sorry.}\n"
    )
    return Call(json={"files": {f"{playbook_id}.yaml": yaml}})


# The one table: `<service> <METHOD> <path>` -> the status each caller gets, and what it sends.
TABLE: dict[str, Row] = {
    # --- feedback: store keys (their stores), staff by role (their stores), the admin token -----
    #                         staff staff_a staff_b mgr_a area_a cx  analyst
    "feedback POST /v1/feedback": Row(
        "401 401 401 202 403 401 401 401 401 401 401 401 401",  # keys only: staff and admin submit nothing
        lambda s: Call(json={**s.complaint()}),
    ),
    # Another store's id in the query is refused (403), not answered empty.
    "feedback GET /v1/feedback": row(
        "403 403 403 200 200 200 200",
        keys="200 403",
        admin=200,
        build=lambda _: Call(query={"store_id": STORE_A}),
    ),
    "feedback GET /v1/feedback/export.csv": row(
        "403 403 403 200 200 200 403",  # the analyst exports nothing (customer ids, texts)
        keys="200 403",
        admin=200,
        build=lambda _: Call(query={**PERIOD, "store_id": STORE_A}),
    ),
    "feedback GET /v1/feedback/{feedback_id}": row(
        "403 403 403 200 200 200 200", keys="200 404", admin=200, build=feedback_of_a
    ),
    # Corrections of the classifier (#17): every role that works the store's alerts or manages it,
    # within its stores (store B's shift lead: 404, nothing written); never the analyst or a key.
    "feedback POST /v1/feedback/{feedback_id}/corrections": row(
        "200 200 404 200 200 200 403",
        admin=200,
        build=lambda s: Call(path={"feedback_id": s.fresh_alert()[1]}, json={"category": "wait_time"}),
    ),
    # The corrections as labelled examples carry customers' texts: head office only.
    "feedback GET /v1/classifier/corrections": cx_only(200),
    "feedback GET /v1/analytics": row(
        "403 403 403 200 200 200 200",
        keys="200 403",
        admin=200,
        build=lambda _: Call(query={**PERIOD, "store_id": STORE_A}),
    ),
    # Targets (#20 §5): each metric against its target, like the analytics.
    "feedback GET /v1/analytics/targets": row(
        "403 403 403 200 200 200 200",
        keys="200 403",
        admin=200,
        build=lambda _: Call(query={"store_id": STORE_A}),
    ),
    # Profile's outreach report through feedback (the dashboard's), like profile's own.
    "feedback GET /v1/analytics/outreach": row(
        "403 403 403 200 200 200 200",
        keys="200 403",
        admin=200,
        build=lambda _: Call(query={"store_id": STORE_A}),
    ),
    "feedback GET /v1/targets": row("403 403 403 200 200 200 200", admin=200),
    # An area manager sets their area's stores' targets; a store manager only reads them.
    "feedback PUT /v1/targets": row(
        "403 403 403 403 200 200 403",
        admin=200,
        build=lambda _: Call(json={"store_id": STORE_A, "metric": "csat", "value": 4.2}),
    ),
    "feedback DELETE /v1/targets": row(
        "403 403 403 403 204 204 403", admin=204, build=lambda s: Call(query=s.fresh_target())
    ),
    "feedback GET /v1/analytics/open-cases": row(
        "403 403 403 200 200 200 200",
        keys="200 403",
        admin=200,
        build=lambda _: Call(query={"store_id": STORE_A}),
    ),
    "feedback POST /v1/admin/api-keys": cx_only(
        201, lambda s: Call(json={"name": s.unique("matrix"), "store_ids": [STORE_A]})
    ),
    "feedback GET /v1/admin/api-keys": cx_only(200),
    "feedback POST /v1/admin/api-keys/{key_id}/rotate": cx_only(
        201, lambda s: Call(path={"key_id": s.fresh_api_key()}, json={"grace_seconds": 0})
    ),
    "feedback DELETE /v1/admin/api-keys/{key_id}": cx_only(
        204, lambda s: Call(path={"key_id": s.fresh_api_key()})
    ),
    "feedback PUT /v1/admin/stores": cx_only(200, lambda _: Call(json=[STORE_A_RECORD])),
    "feedback GET /v1/admin/stores": cx_only(200),
    # The classifier registry (classifier.models): a version nobody registered is 404 and a
    # bundle that is no zip 422 for those allowed, before anything is stored or changed.
    "feedback GET /v1/admin/classifier/models": cx_only(200),
    "feedback POST /v1/admin/classifier/models": cx_only(
        422, lambda _: Call(content=b"not a model bundle", content_type="application/zip")
    ),
    "feedback GET /v1/admin/classifier/models/{version}": cx_only(404, lambda _: Call(path=UNKNOWN_MODEL)),
    "feedback GET /v1/admin/classifier/models/{version}/bundle": cx_only(
        404, lambda _: Call(path=UNKNOWN_MODEL)
    ),
    "feedback POST /v1/admin/classifier/models/{version}:promote": cx_only(
        404, lambda _: Call(path=UNKNOWN_MODEL)
    ),
    "feedback POST /v1/admin/classifier/models/{version}:rollback": cx_only(
        404, lambda _: Call(path=UNKNOWN_MODEL)
    ),
    # The follow-up survey is public: its signed one-time token is the credential, so a made-up
    # one is refused whoever calls.
    "feedback GET /f/{token}": Row("404 " * len(CALLERS), lambda _: Call(path={"token": "made-up-token"})),
    "feedback POST /f/{token}": Row(
        "404 " * len(CALLERS), lambda _: Call(path={"token": "made-up-token"}, json={"csat": 5})
    ),
    "feedback GET /f/assets/follow-up.css": PUBLIC,
    "feedback GET /dashboard": PUBLIC,  # the page; its data comes from the analytics API
    "feedback GET /dashboard/config.json": PUBLIC,  # where notify and actions are: no secret
    "feedback GET /dashboard/assets/{name:path}": Row(
        PUBLIC.statuses, lambda _: Call(path={"name": "dashboard.js"})
    ),
    # --- profile: managers read their stores' customers and lists; changes are cx_admin's ------
    # The real-time check-in (#18): a store key for its own stores (checked with feedback, which
    # issues the keys) or the admin token; a staff token is no store key.
    "profile POST /v1/visits": Row(
        "401 401 401 202 403 401 401 401 401 401 401 401 202",
        lambda _: Call(json={"store_id": STORE_A, "customer": {"loyalty_id": "L-1001"}, "channel": "pos"}),
    ),
    "profile POST /v1/customers": cx_only(
        200, lambda s: Call(json={"customers": [{"loyalty_id": s.unique("L-matrix"), "tier": "gold"}]})
    ),
    "profile GET /v1/customers": row(
        "403 403 403 200 200 200 403", admin=200, build=lambda _: Call(query={"signal": "vip"})
    ),
    "profile GET /v1/customers/{customer_id}": row(
        "403 403 403 200 200 200 403", admin=200, build=customer_of_a
    ),
    "profile GET /v1/customers/{customer_id}/context": row(
        "403 403 403 200 200 200 403", admin=200, build=customer_of_a
    ),
    "profile GET /v1/customers/{customer_id}/timeline": row(
        "403 403 403 200 200 200 403", admin=200, build=customer_of_a
    ),
    "profile GET /v1/customers/{customer_id}/merges": row(
        "403 403 403 200 200 200 403", admin=200, build=customer_of_a
    ),
    "profile GET /v1/customers/{customer_id}/export": cx_only(200, customer_of_a),
    "profile DELETE /v1/customers/{customer_id}": cx_only(
        200, lambda s: Call(path={"customer_id": s.fresh_customer()})
    ),
    # No merge happened in this system: the admin is told so; everyone else never gets that far.
    "profile POST /v1/merges/{merge_id}:undo": cx_only(
        404, lambda _: Call(path={"merge_id": "00000000-0000-7000-8000-000000000000"})
    ),
    "profile POST /v1/customers:import": cx_only(
        200,
        lambda s: Call(
            content=f"loyalty_id,name,tier\n{s.unique('L-import')},Import Kim,silver\n".encode(),
            content_type="text/csv",
        ),
    ),
    "profile POST /v1/visits:import": cx_only(
        200,
        lambda s: Call(
            content=f"loyalty_id,store_id,visited_at,amount\n{s.loyalty_a},{STORE_A},2026-11-01T12:00:00+09:00,"
            "12000\n".encode(),
            content_type="text/csv",
        ),
    ),
    "profile GET /v1/reports/revisit": row("403 403 403 200 200 200 200", admin=200),
    # Outreach work (#20 §4): managers assign (a new customer each time: one live assignment
    # per customer and store), the assignee (staff_a) records, staff read their own.
    "profile POST /v1/outreach/assignments": row(
        "403 403 403 201 201 201 403", admin=201, build=lambda s: Call(json=s.assignment_body())
    ),
    "profile GET /v1/outreach/assignments": row(
        "200 200 403 200 200 200 403", admin=200, build=lambda _: Call(query={"store_id": STORE_A})
    ),
    # Store A's other staff member is not the assignee (403); store B's is answered 404.
    "profile POST /v1/outreach/assignments/{assignment_id}/contacts": row(
        "403 201 404 201 201 201 403",
        admin=201,
        build=lambda s: Call(
            path={"assignment_id": s.fresh_assignment()}, json={"channel": "phone", "outcome": "reached"}
        ),
    ),
    "profile DELETE /v1/outreach/assignments/{assignment_id}": row(
        "403 403 403 204 204 204 403",
        admin=204,
        build=lambda s: Call(path={"assignment_id": s.fresh_assignment()}),
    ),
    "profile GET /v1/outreach/report": row(
        "403 403 403 200 200 200 200", admin=200, build=lambda _: Call(query={"store_id": STORE_A})
    ),
    # --- actions: the library is read by every role and the admin token (the ingress routes it on
    # the public host, so never without a token); publishing is cx_admin's -----------------------
    "actions GET /v1/playbooks": row("200 200 200 200 200 200 200", admin=200),
    "actions GET /v1/playbooks/{playbook_id}": row(
        "200 200 200 200 200 200 200",
        admin=200,
        build=lambda _: Call(path={"playbook_id": "app-digital-default"}),
    ),
    "actions PUT /v1/playbooks": cx_only(200, playbook),
    "actions POST /v1/playbooks:validate": cx_only(200, playbook),  # writes nothing
    # A bundled playbook has one version: nothing to roll back to (409), and nothing changes.
    "actions POST /v1/playbooks/{playbook_id}/rollback": cx_only(
        409, lambda _: Call(path={"playbook_id": "app-digital-default"})
    ),
    # Taxonomy (#20 §3): read by anyone; versions, checks and publishing are cx_admin's. The
    # published set sent back unchanged is a valid next version; no version 9999 to roll back to.
    "actions GET /v1/taxonomy": PUBLIC,
    "actions GET /v1/taxonomy/versions": cx_only(200),
    "actions POST /v1/taxonomy:validate": cx_only(
        200, lambda _: Call(json={"taxonomy": taxonomy.seed().to_dict()})
    ),
    "actions PUT /v1/taxonomy": cx_only(200, lambda _: Call(json={"taxonomy": taxonomy.seed().to_dict()})),
    "actions POST /v1/taxonomy/rollback": cx_only(409, lambda _: Call(json={"to_version": 9999})),
    "actions POST /v1/plans:lookup": row(
        "200 200 200 200 200 200 200",
        admin=200,
        build=lambda _: Call(json={"feedback": {"category": "food_quality", "store_id": STORE_A}}),
    ),
    # --- notify: staff tokens (their stores, an area manager's area, the CX admin everything) --
    "notify POST /v1/auth/login": Row(
        PUBLIC.statuses,  # whoever sends it, the e-mail and password decide
        lambda s: Call(
            json={"email": "minji@gangnam.demo", "password": s.staff("minji@gangnam.demo")["password"]}
        ),
    ),
    # A refresh token is its own credential (#23): whoever sends a valid one gets the next
    # session. Logout with a refresh token ends that session and every access token of its owner
    # (a fresh staff member's, so no caller's own); the access-token logout (no body) is
    # tests/security/test_identity.py's.
    "notify POST /v1/auth/refresh": Row(
        PUBLIC.statuses, lambda s: Call(json={"refresh_token": s.fresh_refresh_token()})
    ),
    "notify POST /v1/auth/logout": Row(
        "204 " * len(CALLERS), lambda s: Call(json={"refresh_token": s.fresh_refresh_token()})
    ),
    # One's own password (any role): the staff token reaches the handler, which refuses a
    # "change" to the same password (no side effect on the shared demo logins, no failed login).
    "notify POST /v1/auth/password": staff_only(
        "422 422 422 422 422 422 422",
        lambda _: Call(json={"current_password": "matrix-password-1", "new_password": "matrix-password-1"}),
    ),
    # An invalid language: who gets past the token check, without changing anyone's language.
    "notify PUT /v1/auth/language": staff_only(
        "422 422 422 422 422 422 422", lambda _: Call(json={"language": "xx"})
    ),
    "notify GET /v1/push/vapid-public-key": PUBLIC,
    #                          staff staff_a staff_b mgr_a area_a cx  analyst
    "notify POST /v1/installs": staff_only(
        "204 204 204 204 204 204 403",
        lambda s: Call(
            json={
                "install_id": s.unique("install-matrix"),
                "permission": "granted",
                "push": "subscribed",
                "app_version": "matrix",
            }
        ),
    ),
    # The fleet's health (directory.read): store managers and above, their scope (a store
    # outside it is 403).
    "notify GET /v1/fleet": staff_only(
        "403 403 403 200 200 200 403", lambda _: Call(query={"store_id": STORE_A})
    ),
    "notify POST /v1/devices": staff_only(
        "201 201 201 201 201 201 403", lambda s: Call(json=s.push_emulator.new_subscription(label="matrix"))
    ),
    "notify DELETE /v1/devices/{device_id}": staff_only(
        "404 204 404 404 404 404 403", lambda s: Call(path={"device_id": s.fresh_device("staff_a")})
    ),
    "notify GET /v1/alerts": staff_only("200 200 200 200 200 200 403"),
    "notify POST /v1/alerts/stream-ticket": staff_only("200 200 200 200 200 200 403"),
    "notify GET /v1/alerts/stream": staff_only("200 200 200 200 200 200 403"),
    "notify GET /v1/alerts/{alert_id}": staff_only("200 200 404 200 200 200 403", alert_of_a),
    "notify POST /v1/alerts/{alert_id}/ack": staff_only("200 200 404 200 200 200 403", fresh_alert_of_a),
    # The checklist (#18): whoever may see the alert ticks its steps.
    "notify PUT /v1/alerts/{alert_id}/steps/{index}": staff_only(
        "200 200 404 200 200 200 403",
        lambda s: Call(path={"alert_id": s.fresh_alert()[0], "index": "0"}, json={"done": True}),
    ),
    "notify POST /v1/alerts/{alert_id}/resolve": staff_only(
        "200 200 404 200 200 200 403",
        lambda s: fresh_alert_of_a(s, {"outcome": "resolved", "note": "matrix"}),
    ),
    # The staff app's correction (#17), relayed to feedback with the caller's own token.
    "notify POST /v1/alerts/{alert_id}/corrections": staff_only(
        "200 200 404 200 200 200 403", lambda s: fresh_alert_of_a(s, {"sentiment": "negative"})
    ),
    "notify POST /v1/alerts/{alert_id}/receipts": staff_only(
        "204 204 404 204 204 204 403",
        lambda s: Call(path={"alert_id": s.shared_alert()[0]}, json={"kind": "shown"}),
    ),
    # Delivery receipts are for store managers and above.
    "notify GET /v1/alerts/{alert_id}/deliveries": staff_only("403 403 403 200 200 200 403", alert_of_a),
    "notify PUT /v1/admin/stores": cx_only(200, lambda _: Call(json=[NOTIFY_STORE_A])),
    # Managers read the directory of their stores (an answer without store B's).
    "notify GET /v1/admin/stores": row("403 403 403 200 200 200 403", admin=200),
    "notify GET /v1/admin/staff": row("403 403 403 200 200 200 403", admin=200),
    "notify PUT /v1/admin/staff": cx_only(200, lambda _: Call(json=[MATRIX_STAFF])),
    "notify POST /v1/admin/staff:import": cx_only(
        200, lambda _: Call(content=MATRIX_STAFF_CSV, content_type="text/csv")
    ),
    "notify POST /v1/admin/staff/{staff_id}/activate": cx_only(
        204, lambda s: Call(path={"staff_id": s.fresh_staff()})
    ),
    "notify POST /v1/admin/staff/{staff_id}/unlock": cx_only(
        204, lambda _: Call(path={"staff_id": STAFF_A_ID})
    ),
    "notify POST /v1/admin/staff/{staff_id}/deactivate": cx_only(
        204, lambda s: Call(path={"staff_id": s.fresh_staff()})
    ),
    # Managers unlock the staff they manage; a shift lead may not (403).
    "notify POST /v1/staff/{staff_id}/unlock": staff_only(
        "403 403 403 204 204 204 403", lambda _: Call(path={"staff_id": STAFF_A_ID})
    ),
    "notify GET /v1/admin/staff/{staff_id}/shifts": row(
        "403 403 403 200 200 200 403", admin=200, build=lambda _: Call(path={"staff_id": STAFF_A_ID})
    ),
    # Shifts and overrides (directory.shifts, #20): managers keep their own staff's (store A's
    # shift lead here); a manager of other staff is 403 (tests/notify/test_staff_editing.py).
    "notify PUT /v1/admin/staff/{staff_id}/shifts": row(
        "403 403 403 200 200 200 403",
        admin=200,
        build=lambda _: Call(path={"staff_id": STAFF_A_ID}, json=[]),  # [] = always on duty, as seeded
    ),
    "notify POST /v1/admin/staff/{staff_id}/overrides": row(
        "403 403 403 201 201 201 403",
        admin=201,
        build=lambda _: Call(
            path={"staff_id": STAFF_A_ID},
            json={"starts_on": "2020-01-01", "ends_on": "2020-01-01", "on_duty": True},
        ),
    ),
    "notify DELETE /v1/admin/staff/{staff_id}/overrides/{override_id}": row(
        "403 403 403 204 204 204 403",
        admin=204,
        build=lambda s: Call(path={"staff_id": STAFF_A_ID, "override_id": s.fresh_override(STAFF_A_ID)}),
    ),
    "notify GET /v1/admin/stores/{store_id}/on-duty": row(
        "403 403 403 200 200 200 403", admin=200, build=lambda _: Call(path={"store_id": STORE_A})
    ),
    # Only the delivery-report token opens it (a bounce pipe, an SMS gateway: not a caller here;
    # tests/notify/test_delivery_reports.py): every key, role and the admin token get 401.
    "notify POST /v1/follow-ups/delivery-reports": Row(
        " ".join(["401"] * len(CALLERS)),
        lambda _: Call(json={"message_id": "follow-up.x", "status": "delivered"}),
    ),
    "notify GET /v1/admin/mail-suppressions": cx_only(200),
    "notify POST /v1/admin/mail-suppressions/search": cx_only(
        200, lambda _: Call(json={"email": "x@example.com"})
    ),
    # No address is suppressed here (tests/notify/test_mail_suppressions.py lifts real ones).
    "notify DELETE /v1/admin/mail-suppressions/{address_key}": cx_only(
        404, lambda _: Call(path={"address_key": "0" * 64})
    ),
    "notify POST /v1/admin/webhooks": cx_only(
        201,
        lambda s: Call(json={"url": f"https://93.184.216.34/{s.unique('m')}", "events": ["customer.erased"]}),
    ),
    "notify GET /v1/admin/webhooks": cx_only(200),
    "notify GET /v1/admin/webhooks/event-types": cx_only(200),
    "notify GET /v1/admin/webhooks/{endpoint_id}": cx_only(200, webhook),
    "notify DELETE /v1/admin/webhooks/{endpoint_id}": cx_only(204, webhook),
    "notify POST /v1/admin/webhooks/{endpoint_id}/rotate-secret": cx_only(200, webhook),
    "notify POST /v1/admin/webhooks/{endpoint_id}/enable": cx_only(200, webhook),
    "notify POST /v1/admin/webhooks/{endpoint_id}/recover": cx_only(
        200, lambda s: Call(path=webhook(s).path, json={"since": "2026-01-01T00:00:00Z"})
    ),
    "notify GET /v1/admin/webhooks/{endpoint_id}/deliveries": cx_only(200, webhook),
    # The test message goes out (to an address nothing answers here): the answer says how it went.
    "notify POST /v1/admin/webhooks/{endpoint_id}/test": cx_only(200, webhook),
    "notify GET /": PUBLIC,  # the staff app: its data comes from the staff API
    "notify GET /sw.js": PUBLIC,
    "notify GET /manifest.webmanifest": PUBLIC,
    "notify GET /static/{name:path}": Row(PUBLIC.statuses, lambda _: Call(path={"name": "app.js"})),
}
# Every service's audit log: cx_admin and the admin token.
for _service in ("feedback", "profile", "actions", "notify"):
    TABLE[f"{_service} GET /v1/audit"] = cx_only(200)
# Every service: its OpenAPI document and API docs, the probes and the Prometheus metrics
# (counts under bounded labels, scraped from inside the network: docs/OPERATIONS.md) are public.
for _service in SERVICE_NAMES:
    for _path in (
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        TABLE[f"{_service} GET {_path}"] = PUBLIC


def test_every_route_has_a_row() -> None:
    routes = set(every_route())
    assert not routes - set(TABLE), f"routes without a row in TABLE: {sorted(routes - set(TABLE))}"
    assert not set(TABLE) - routes, f"rows without a route: {sorted(set(TABLE) - routes)}"
    for key, row in TABLE.items():
        assert len(row.statuses.split()) == len(CALLERS), key


def call(s: SecuredSystem, route: str, caller: str, row: Row) -> httpx.Response:
    service, method, path = route.split(" ", 2)
    cell = row.build(s)
    # A path parameter's converter ("{name:path}") is the router's business, not the URL's.
    url = s.url(service) + re.sub(r"\{(\w+):\w+\}", r"{\1}", path).format(**cell.path)
    headers = dict(s.headers[caller])
    if row.fresh_login and caller in STAFF_EMAILS:
        headers = s.login(caller)
    if cell.content_type:
        headers["Content-Type"] = cell.content_type
    with s.http.stream(
        method, url, params=cell.query, json=cell.json, content=cell.content, headers=headers
    ) as response:
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            response.read()  # the live stream never ends: its status and headers are the answer
    if row.fresh_login and caller in STAFF_EMAILS:
        # A logout ends every token of its staff member issued so far: the caller's next rows
        # need one from after it.
        s.headers[caller] = s.login(caller)
    return response


@pytest.mark.parametrize("route", every_route())
def test_each_caller_gets_the_status_of_the_table(secured: SecuredSystem, route: str) -> None:
    row = TABLE.get(route)
    assert row is not None, f"{route} has no row in TABLE: say who may call it"
    expected = dict(zip(CALLERS, (int(s) for s in row.statuses.split()), strict=True))
    answered: dict[str, int] = {}
    for caller in CALLERS:
        response = call(secured, route, caller, row)
        answered[caller] = response.status_code
        if response.status_code >= 400 and response.headers.get("content-type", "").startswith(
            "application/"
        ):
            assert response.headers["content-type"].startswith("application/problem+json"), (
                caller,
                response.text,
            )
        if caller in ("key_b", "staff_b") and response.is_success and response.is_stream_consumed:
            leaked = [marker for marker in secured.markers_of_a() if marker in response.text]
            assert not leaked, f"{caller} sees store A's {leaked} in {route}"
    wrong = {c: f"{answered[c]} (table: {expected[c]})" for c in CALLERS if answered[c] != expected[c]}
    assert not wrong, f"{route}: {wrong}"
