"""Notify's directory and receipts over REST against the running system: stores with quiet
hours, CSV import of staff, weekly shifts and overrides deciding who is on duty, delivery
receipts for managers, and a repeat complaint merged into its open alert. Every bad request
answers problem+json and changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import RunningSystem
from tests.notify.conftest import seoul
from tests.notify.test_alerts_api import problem
from tests.support.system import login, post_feedback, wait_for
from voc_cli.push_emulator import PushEmulator

STORE = {
    "id": "store-dir-test",
    "name": "Directory test store",
    "area_id": "area-dir-test",
    "timezone": "Asia/Seoul",
    "language": "en",
    "quiet_start": "23:00",
    "quiet_end": "07:00",
}
MONDAY = (2026, 11, 23)  # a Monday
STAFF_CSV = (
    "id,name,email,password,role,store_ids,area_id,language\n"
    "dir-lead,Dana Lead,dana@dir.demo,lead-password-1,shift_lead,store-dir-test,,en\n"
    "dir-staff,김직원,kim@dir.demo,staff-password-1,staff,store-dir-test;store-dir-other,,ko\n"
)


def admin(system: RunningSystem) -> dict[str, str]:
    return system.admin_headers


@pytest.fixture(scope="module")
def directory(running_system: RunningSystem) -> str:
    """A store of its own with two imported staff, so shifts here change no other test's routing."""
    notify = running_system.url("notify")
    r = httpx.put(f"{notify}/v1/admin/stores", headers=admin(running_system), json=[STORE])
    assert r.status_code == 200, r.text
    r = httpx.post(
        f"{notify}/v1/admin/staff:import",
        headers={**admin(running_system), "Content-Type": "text/csv"},
        content=STAFF_CSV.encode(),
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"imported": 2, "created": 2, "updated": 0}
    return notify


def log_in(notify: str, email: str, password: str) -> httpx.Response:
    return httpx.post(f"{notify}/v1/auth/login", json={"email": email, "password": password})


def test_stores_take_quiet_hours_and_reject_bad_zones_and_times(
    running_system: RunningSystem, directory: str
) -> None:
    stores = httpx.get(f"{directory}/v1/admin/stores", headers=admin(running_system)).json()
    mine = next(s for s in stores if s["id"] == STORE["id"])
    assert (mine["quiet_start"], mine["quiet_end"]) == ("23:00", "07:00")
    bad = [
        {**STORE, "id": "bad-1", "timezone": "Mars/Olympus"},
        {**STORE, "id": "bad-2", "quiet_start": "25:00"},
        {**STORE, "id": "bad-3", "quiet_end": None},
        {**STORE, "id": "bad-4", "quiet_start": "07:00", "quiet_end": "07:00"},
        # An Arabic-Indic digit after an ASCII one: Python's \d took "0\u0669:3\u0660" for 09:30.
        {**STORE, "id": "bad-5", "quiet_start": "0\u0669:3\u0660"},
    ]
    body = problem(httpx.put(f"{directory}/v1/admin/stores", headers=admin(running_system), json=bad), 422)
    fields = {e["field"] for e in body["errors"]}
    assert {"body.0.timezone", "body.1.quiet_start", "body.2", "body.3", "body.4.quiet_start"} <= fields
    ids = {s["id"] for s in httpx.get(f"{directory}/v1/admin/stores", headers=admin(running_system)).json()}
    assert not ids & {"bad-1", "bad-2", "bad-3", "bad-4", "bad-5"}, "nothing written"
    # The documents declare the pattern the check uses, for clients and fuzzers.
    document = httpx.get(f"{directory}/openapi.json").json()
    quiet = document["components"]["schemas"]["StoreIn"]["properties"]["quiet_start"]["anyOf"][0]
    assert quiet["pattern"] == "^([01][0-9]|2[0-3]):([0-5][0-9])$"


def test_stores_refuse_a_zone_area_or_a_name_no_zone_file_has(
    running_system: RunningSystem, directory: str
) -> None:
    """ "America" is a directory of the tz database (ZoneInfo raised IsADirectoryError: a 500);
    every such name is a 422 naming the field, and nothing is written."""
    bad = [
        {**STORE, "id": "zone-1", "timezone": "America"},
        {**STORE, "id": "zone-2", "timezone": "Asia/../America"},
        {**STORE, "id": "zone-3", "timezone": "Asia/"},
        {**STORE, "id": "zone-4", "timezone": "a/" * 31},
    ]
    url = f"{directory}/v1/admin/stores"
    body = problem(httpx.put(url, headers=admin(running_system), json=bad), 422)
    assert {e["field"] for e in body["errors"]} == {f"body.{i}.timezone" for i in range(4)}
    too_long = [{**STORE, "id": "zone-5", "timezone": "x" * 300}]
    body = problem(httpx.put(url, headers=admin(running_system), json=too_long), 422)
    assert {e["field"] for e in body["errors"]} == {"body.0.timezone"}
    ids = {s["id"] for s in httpx.get(url, headers=admin(running_system)).json()}
    assert not ids & {f"zone-{i}" for i in range(1, 6)}, "nothing written"


def test_csv_import_hashes_passwords_and_keeps_them_on_update(
    running_system: RunningSystem, directory: str
) -> None:
    assert log_in(directory, "dana@dir.demo", "lead-password-1").json()["staff"]["role"] == "shift_lead"
    korean = log_in(directory, "kim@dir.demo", "staff-password-1").json()["staff"]
    assert korean["name"] == "김직원" and korean["store_ids"] == ["store-dir-test", "store-dir-other"]
    # Re-import without a password: the name changes, the password stays.
    renamed = "id,name,email,role,store_ids\ndir-lead,Dana L.,dana@dir.demo,shift_lead,store-dir-test\n"
    r = httpx.post(
        f"{directory}/v1/admin/staff:import",
        headers={**admin(running_system), "Content-Type": "text/csv; charset=utf-8"},
        content=("\ufeff" + renamed).encode(),
    )
    assert r.json() == {"imported": 1, "created": 0, "updated": 1}
    assert log_in(directory, "dana@dir.demo", "lead-password-1").json()["staff"]["name"] == "Dana L."


def test_csv_import_deactivates_and_reactivates_with_the_active_column(
    running_system: RunningSystem, directory: str
) -> None:
    """`active` false ends the member's sessions on every service at once (as deactivate does);
    blank keeps the state; true brings them back; a value that is not a yes/no is refused with
    its line, nothing imported."""
    url = f"{directory}/v1/admin/staff:import"
    csv_headers = {**admin(running_system), "Content-Type": "text/csv"}
    new = "id,name,email,password,role,store_ids,active\n"
    new += "dir-temp,Temp Worker,temp@dir.demo,temp-password-1,staff,store-dir-temp,\n"
    assert httpx.post(url, headers=csv_headers, content=new.encode()).status_code == 200
    session = log_in(directory, "temp@dir.demo", "temp-password-1").json()
    bearer = {"Authorization": f"Bearer {session['access_token']}"}
    assert httpx.get(f"{directory}/v1/alerts", headers=bearer).status_code == 200

    off = (
        "id,name,email,role,store_ids,active\ndir-temp,Temp Worker,temp@dir.demo,staff,store-dir-temp,false\n"
    )
    assert httpx.post(url, headers=csv_headers, content=off.encode()).json()["updated"] == 1
    problem(httpx.get(f"{directory}/v1/alerts", headers=bearer), 401)
    problem(log_in(directory, "temp@dir.demo", "temp-password-1"), 401)

    bad = (
        "id,name,email,role,store_ids,active\ndir-temp,Temp Worker,temp@dir.demo,staff,store-dir-temp,maybe\n"
    )
    body = problem(httpx.post(url, headers=csv_headers, content=bad.encode()), 422)
    assert (2, "active") in {(e["row"], e["field"]) for e in body["errors"]}

    on = off.replace(",false", ",true")
    assert httpx.post(url, headers=csv_headers, content=on.encode()).json()["updated"] == 1
    assert log_in(directory, "temp@dir.demo", "temp-password-1").status_code == 200


def test_csv_import_reports_every_bad_row_and_imports_nothing(
    running_system: RunningSystem, directory: str
) -> None:
    url = f"{directory}/v1/admin/staff:import"
    csv_headers = {**admin(running_system), "Content-Type": "text/csv"}
    bad = (
        "id,name,email,password,role,store_ids\n"
        "dir-new-ok,Fine Person,fine@dir.demo,fine-password-1,staff,store-dir-test\n"  # 2: valid
        "dir-bad-email,X,not-an-email,password-123,staff,store-dir-test\n"  # 3
        "dir-bad-role,X,role@dir.demo,password-123,boss,store-dir-test\n"  # 4
        "dir-no-pass,X,nopass@dir.demo,,staff,store-dir-test\n"  # 5: new staff need one
        "dir-new-ok,Again,again@dir.demo,password-123,staff,store-dir-test\n"  # 6: id twice
        "dir-taken,X,minji@gangnam.demo,password-123,staff,store-dir-test\n"  # 7: someone's e-mail
        "dir-short,X,short@dir.demo,short,staff,store-dir-test\n"  # 8
    )
    body = problem(httpx.post(url, headers=csv_headers, content=bad.encode()), 422)
    assert "nothing was imported" in body["detail"]
    found = {(e["row"], e["field"]) for e in body["errors"]}
    assert {(3, "email"), (4, "role"), (5, "password"), (6, "id"), (7, "email"), (8, "password")} <= found
    assert 2 not in {e["row"] for e in body["errors"]}
    problem(log_in(directory, "fine@dir.demo", "fine-password-1"), 401)  # the valid row was not written
    assert log_in(directory, "minji@gangnam.demo", running_system.staff("minji@gangnam.demo")["password"])

    body = problem(httpx.post(url, headers=csv_headers, content=b"id,name,nickname\nx,y,z\n"), 422)
    assert {(e["field"], e["message"]) for e in body["errors"]} >= {
        ("email", "required column is missing"),
        ("nickname", "unknown column"),
    }
    problem(httpx.post(url, headers=csv_headers, content=b"id,name,email,role\n"), 422)
    problem(httpx.post(url, headers=csv_headers, content="id,name\n\xff".encode("latin-1")), 400)
    problem(httpx.post(url, headers=admin(running_system), json=[{"id": "x"}]), 415)
    problem(httpx.post(url, headers={"Content-Type": "text/csv"}, content=STAFF_CSV.encode()), 401)


def test_csv_import_refuses_a_repeated_column_an_oversized_cell_and_an_unclosed_quote(
    running_system: RunningSystem, directory: str
) -> None:
    """A repeated column let its last cell win ("role,role" made a row that reads "staff" a
    cx_admin); a cell over the csv limit was a 500; an unclosed quote swallowed the rest of the
    file and was reported as missing fields. Each is refused, naming the line, nothing imported."""
    url = f"{directory}/v1/admin/staff:import"
    csv_headers = {**admin(running_system), "Content-Type": "text/csv"}
    twice = "id,name,email,role,role,password\ndir-probe-2,N,p2@dir.demo,staff,cx_admin,probe-password-1\n"
    body = problem(httpx.post(url, headers=csv_headers, content=twice.encode()), 422)
    assert {(e["row"], e["field"], e["message"]) for e in body["errors"]} == {(1, "role", "repeated column")}
    problem(log_in(directory, "p2@dir.demo", "probe-password-1"), 401)  # nobody was created

    huge = (
        "id,name,email,role,password\n"
        "dir-probe-3,Fine,p3@dir.demo,staff,probe-password-1\n"
        f'dir-probe-4,"{"x" * 140_000}",p4@dir.demo,staff,probe-password-1\n'
    )
    body = problem(httpx.post(url, headers=csv_headers, content=huge.encode()), 400)
    assert body["detail"] == "Line 3: a field is longer than 131072 characters; nothing was imported."
    assert [(e["row"], e["message"]) for e in body["errors"]] == [
        (3, "a field is longer than 131072 characters")
    ]
    assert "x" * 200 not in str(body)

    unclosed = (
        "id,name,email,role,password\n"
        "dir-probe-5,Fine,p5@dir.demo,staff,probe-password-1\n"
        'dir-probe-6,"Open quote,p6@dir.demo,staff,probe-password-1\n'
        "dir-probe-7,Swallowed,p7@dir.demo,staff,probe-password-1\n"
    )
    body = problem(httpx.post(url, headers=csv_headers, content=unclosed.encode()), 400)
    assert [(e["row"], e["message"]) for e in body["errors"]] == [
        (3, "a quoted field starts on this line and is never closed")
    ]
    assert body["detail"].startswith("Line 3: a quoted field starts on this line and is never closed")
    for email in ("p3@dir.demo", "p5@dir.demo"):
        problem(log_in(directory, email, "probe-password-1"), 401)  # the valid rows were not written


def test_shifts_and_overrides_decide_who_is_on_duty(running_system: RunningSystem, directory: str) -> None:
    headers = admin(running_system)
    shifts_url = f"{directory}/v1/admin/staff/dir-lead/shifts"
    on_duty_url = f"{directory}/v1/admin/stores/{STORE['id']}/on-duty"

    def present(at: float) -> list[str]:
        r = httpx.get(on_duty_url, headers=headers, params={"at": at})
        assert r.status_code == 200, r.text
        return [p["id"] for p in r.json()["on_duty"]]

    # Without shifts everyone is on duty; with them only inside the local shift.
    assert set(present(seoul(*MONDAY, 10))) == {"dir-lead", "dir-staff"}
    r = httpx.put(shifts_url, headers=headers, json=[{"weekday": 0, "starts": "14:00", "ends": "22:00"}])
    assert r.status_code == 200 and len(r.json()["shifts"]) == 1
    assert "dir-lead" not in present(seoul(*MONDAY, 10))
    assert "dir-lead" in present(seoul(*MONDAY, 15))
    at_night = httpx.get(on_duty_url, headers=headers, params={"at": seoul(*MONDAY, 23, 30)}).json()
    assert at_night["quiet_until"] == seoul(2026, 11, 24, 7) and at_night["local_time"].startswith(
        "2026-11-23T23:30"
    )

    r = httpx.post(
        f"{directory}/v1/admin/staff/dir-lead/overrides",
        headers=headers,
        json={"starts_on": "2026-11-23", "ends_on": "2026-11-23", "on_duty": False, "note": "병가"},
    )
    assert r.status_code == 201, r.text
    override_id = r.json()["id"]
    assert "dir-lead" not in present(seoul(*MONDAY, 15)), "the override wins over the shift"
    listed = httpx.get(shifts_url, headers=headers).json()
    assert [o["note"] for o in listed["overrides"]] == ["병가"] and len(listed["shifts"]) == 1

    # Bad input: each a problem+json, none changes the schedule.
    bad_shifts = [
        [{"weekday": 7, "starts": "09:00", "ends": "10:00"}],
        [{"weekday": 1, "starts": "24:00", "ends": "10:00"}],
        [{"weekday": 1, "starts": "09:00", "ends": "09:00"}],
        [{"weekday": 1, "starts": "9am", "ends": "10:00", "extra": True}],
    ]
    for payload in bad_shifts:
        problem(httpx.put(shifts_url, headers=headers, json=payload), 422)
    problem(httpx.put(f"{directory}/v1/admin/staff/nobody/shifts", headers=headers, json=[]), 404)
    bad_overrides = [
        {"starts_on": "2026-11-24", "ends_on": "2026-11-23", "on_duty": True},
        {"starts_on": "someday", "ends_on": "2026-11-23", "on_duty": True},
        # A JSON boolean is true or false: 0 and "yes" were read as booleans (schemathesis).
        {"starts_on": "2026-11-23", "ends_on": "2026-11-24", "on_duty": 0},
        {"starts_on": "2026-11-23", "ends_on": "2026-11-24", "on_duty": "yes"},
    ]
    for payload in bad_overrides:
        overrides_url = f"{directory}/v1/admin/staff/dir-lead/overrides"
        problem(httpx.post(overrides_url, headers=headers, json=payload), 422)
    problem(
        httpx.delete(f"{directory}/v1/admin/staff/dir-staff/overrides/{override_id}", headers=headers), 404
    )
    problem(httpx.get(f"{directory}/v1/admin/stores/no-such-store/on-duty", headers=headers), 404)
    problem(httpx.put(shifts_url, json=[]), 401)
    assert httpx.get(shifts_url, headers=headers).json() == listed, "nothing changed"

    assert (
        httpx.delete(
            f"{directory}/v1/admin/staff/dir-lead/overrides/{override_id}", headers=headers
        ).status_code
        == 204
    )
    assert "dir-lead" in present(seoul(*MONDAY, 15))
    assert httpx.put(shifts_url, headers=headers, json=[]).json()["shifts"] == []
    assert "dir-lead" in present(seoul(*MONDAY, 10)), "no shifts again: always on duty"


def test_delivery_receipts_are_for_managers(
    running_system: RunningSystem, push_emulator: PushEmulator
) -> None:
    notify = running_system.url("notify")
    lead = login(running_system, "yuna@hongdae.demo")
    subscription = push_emulator.new_subscription(label="receipts")
    device_id = httpx.post(f"{notify}/v1/devices", headers=lead, json=subscription).json()["id"]
    r = post_feedback(
        running_system,
        {
            "store_id": "store-hongdae",
            "channel": "kiosk",
            "text": "테이블이 끈적하고 더러워요",
            "ratings": {"csat": 2},
        },
        store_id="store-hongdae",
    )
    feedback_id = r.json()["id"]
    push = push_emulator.wait_for_count(
        1, timeout=15, subscription_id=push_emulator.subscription_id(subscription)
    )[0]
    alert_id = push.json["alert_id"]
    assert push.json["feedback_id"] == feedback_id
    deliveries_url = f"{notify}/v1/alerts/{alert_id}/deliveries"
    # The service worker reports "shown", the app "opened"; then the lead acknowledges.
    for kind in ("shown", "opened"):
        receipt = httpx.post(
            f"{notify}/v1/alerts/{alert_id}/receipts",
            headers=lead,
            json={"kind": kind, "device_id": device_id},
        )
        assert receipt.status_code == 204
    problem(httpx.post(f"{notify}/v1/alerts/{alert_id}/receipts", headers=lead, json={"kind": "read"}), 422)
    assert httpx.post(f"{notify}/v1/alerts/{alert_id}/ack", headers=lead).status_code == 200

    manager = login(running_system, "woosung@hongdae.demo")
    body = httpx.get(deliveries_url, headers=manager).json()
    mine = next(d for d in body["deliveries"] if d["device_id"] == device_id)
    assert mine["status"] == "accepted" and mine["staff_id"] == "staff-hd-lead"
    assert mine["accepted_at"] <= mine["shown_at"] <= mine["opened_at"] <= mine["acknowledged_at"]
    area = httpx.get(deliveries_url, headers=login(running_system, "jimin@area.demo"))
    assert area.status_code == 200
    assert "alerts.deliveries" in problem(httpx.get(deliveries_url, headers=lead), 403)["detail"]
    problem(httpx.get(deliveries_url, headers=login(running_system, "seoyeon@gangnam.demo")), 404)
    problem(httpx.get(deliveries_url), 401)
    resolved = httpx.post(
        f"{notify}/v1/alerts/{alert_id}/resolve", headers=lead, json={"outcome": "resolved"}
    )
    assert resolved.status_code == 200


def test_a_repeat_complaint_updates_the_open_alert_and_moves_both_cases(
    running_system: RunningSystem,
) -> None:
    notify = running_system.url("notify")
    feedback_url = running_system.url("feedback")
    lead = login(running_system, "alex@busan.demo")
    complaint = {
        "store_id": "store-busan",
        "channel": "app",
        "text": "I waited 40 minutes for my order. Far too slow.",
        "ratings": {"csat": 1},
        "customer": {"loyalty_id": "L-1003"},
    }

    def case(feedback_id: str) -> dict[str, Any]:
        r = httpx.get(f"{feedback_url}/v1/feedback/{feedback_id}", headers=running_system.admin_headers)
        body: dict[str, Any] = r.json()
        return body

    def alert_for(feedback_id: str) -> dict[str, Any] | None:
        alerts = httpx.get(f"{notify}/v1/alerts", headers=lead).json()["alerts"]
        return next((a for a in alerts if a["feedback_id"] == feedback_id), None)

    first_id = post_feedback(running_system, complaint, store_id="store-busan").json()["id"]
    first = wait_for(lambda: alert_for(first_id), timeout=15)
    assert first["updates"] == 0
    second_id = post_feedback(
        running_system, {**complaint, "text": "Still waiting. 40 minutes!"}, store_id="store-busan"
    ).json()["id"]
    assert case(second_id)["classification"]["category"] == case(first_id)["classification"]["category"]
    wait_for(lambda: case(second_id)["status"] == "alerted", timeout=15)
    detail = httpx.get(f"{notify}/v1/alerts/{first['id']}", headers=lead).json()
    assert detail["updates"] == 1 and [f["id"] for f in detail["related_feedback"]] == [second_id]
    assert alert_for(second_id) is None, "no second alert"
    alerted = [t for t in case(second_id)["timeline"] if t["kind"] == "alerted"]
    assert alerted and alerted[0]["detail"]["alert_id"] == first["id"]

    r = httpx.post(f"{notify}/v1/alerts/{first['id']}/resolve", headers=lead, json={"outcome": "compensated"})
    assert r.status_code == 200
    for feedback_id in (first_id, second_id):
        wait_for(lambda fid=feedback_id: case(fid)["status"] == "resolved", timeout=15)


def test_the_staff_list_is_scoped_in_the_query_and_never_shows_passwords(
    running_system: RunningSystem, directory: str
) -> None:
    """The console's directory (#20 §2): everyone for cx_admin and the admin token, a manager's
    stores' staff (an area manager's area's) otherwise; a store id that merely starts like
    another (store-gangnam-annex) is not the same store."""
    annex = {
        "id": "dir-annex",
        "name": "Annex Staff",
        "email": "annex@dir.demo",
        "password": "annex-password-1",
        "role": "staff",
        "store_ids": ["store-gangnam-annex"],
    }
    r = httpx.put(f"{directory}/v1/admin/staff", headers=admin(running_system), json=[annex])
    assert r.status_code == 200, r.text

    def listed(headers: dict[str, str]) -> dict[str, dict[str, Any]]:
        answer = httpx.get(f"{directory}/v1/admin/staff", headers=headers)
        assert answer.status_code == 200, answer.text
        return {s["id"]: s for s in answer.json()["staff"]}

    everyone = listed(admin(running_system))
    assert {"staff-gn-mgr", "staff-bs-lead", "dir-lead", "dir-annex"} <= set(everyone)
    assert all("password" not in str(s.keys()) for s in everyone.values())
    assert everyone["dir-annex"] == {
        "id": "dir-annex",
        "name": "Annex Staff",
        "email": "annex@dir.demo",
        "role": "staff",
        "store_ids": ["store-gangnam-annex"],
        "area_id": None,
        "language": "ko",
        "active": True,
        "department_id": None,
    }
    assert set(listed(login(running_system, "cx@hq.demo"))) == set(everyone)
    gangnam = set(listed(login(running_system, "seoyeon@gangnam.demo")))
    assert {"staff-gn-1", "staff-gn-lead", "staff-gn-mgr"} <= gangnam
    assert not gangnam & {"dir-annex", "staff-hd-lead", "staff-bs-lead", "dir-lead"}
    seoul = set(listed(login(running_system, "jimin@area.demo")))
    assert {"staff-gn-1", "staff-hd-lead", "staff-hd-mgr"} <= seoul and "staff-bs-lead" not in seoul
    problem(
        httpx.get(f"{directory}/v1/admin/staff", headers=login(running_system, "minji@gangnam.demo")), 403
    )
    problem(httpx.get(f"{directory}/v1/admin/staff"), 401)
