"""Who may read and act on an alert (security review): the caller's stores or area now, or, for
reading only, a copy sent to them for the department they are in now. Recipient rows are kept
for the record; before, having been sent an alert was read and act access for good (a lead moved
to another store kept acknowledging the old store's alerts, a department's member resolved a
store's case and kept reading after leaving the department). A read is audited with the
customer whose story it shows."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import update

from tests.conftest import DatabaseFactory
from tests.notify.conftest import ADMIN, Notify, known, make_notify, raise_alert
from tests.notify.test_login import PASSWORD, bearer
from voc_notify import auth, views
from voc_notify.facts import Feedback
from voc_notify.models import AlertRecipient, Staff
from voc_platform.db import Database
from voc_platform.errors import Forbidden, NotFound
from voc_platform.identity import Principal

NOW = 1_790_000_000.0
#: Moved from s1 to s2 after the alerts were sent; HQ food safety, stores elsewhere.
MOVED = Principal("moved", "shift_lead", ("s2",), None)
OFFICER = Principal("officer", "staff", (), None)


@pytest.fixture
async def alerts_sent(notify_db: Database) -> dict[str, str]:
    food = await raise_alert(notify_db, Feedback(id="f-food", category="food_safety", text="배탈"), now=NOW)
    rude = await raise_alert(
        notify_db, Feedback(id="f-rude", category="staff_attitude", text="불친절"), now=NOW
    )
    assert food is not None and rude is not None
    async with notify_db.transaction() as s:
        for staff_id, department in (("moved", None), ("officer", "hq_food_safety")):
            s.add(
                Staff(
                    id=staff_id,
                    name=staff_id,
                    email=f"{staff_id}@x.demo",
                    password_hash="x",
                    role="staff" if department else "shift_lead",
                    store_ids=[] if department else ["s2"],
                    language="en",
                    active=True,
                    department_id=department,
                )
            )
        for alert in (food, rude):
            s.add(AlertRecipient(alert_id=alert.alert.id, staff_id="moved", level=0, added_at=NOW))
        s.add(AlertRecipient(alert_id=food.alert.id, staff_id="officer", level=0, added_at=NOW))
    return {"food": food.alert.id, "rude": rude.alert.id}


async def inbox_ids(db: Database, principal: Principal) -> set[str]:
    async with db.session() as s:
        page = await views.inbox(s, principal=principal, status=None, limit=50, before=None)
    return {a["id"] for a in page["alerts"]}


async def visible(db: Database, alert_id: str, principal: Principal, *, acting: bool = False) -> str:
    async with db.session() as s:
        try:
            await views.visible_alert(s, alert_id=alert_id, principal=principal, acting=acting)
        except NotFound:
            return "404"
        except Forbidden:
            return "403"
    return "200"


async def test_a_recipient_who_moved_store_no_longer_reads_or_acts(
    notify_db: Database, alerts_sent: dict[str, str]
) -> None:
    assert await inbox_ids(notify_db, MOVED) == set()
    for alert_id in alerts_sent.values():
        assert await visible(notify_db, alert_id, MOVED) == "404"
        assert await visible(notify_db, alert_id, MOVED, acting=True) == "404"
    # Their old store's staff still do.
    lead = Principal("lead", "shift_lead", ("s1",), None)
    assert await inbox_ids(notify_db, lead) == set(alerts_sent.values())
    assert await visible(notify_db, alerts_sent["rude"], lead, acting=True) == "200"


async def test_a_departments_copy_is_read_only_and_ends_with_the_membership(
    notify_db: Database, alerts_sent: dict[str, str]
) -> None:
    assert await inbox_ids(notify_db, OFFICER) == {alerts_sent["food"]}
    assert await visible(notify_db, alerts_sent["food"], OFFICER) == "200"
    assert await visible(notify_db, alerts_sent["food"], OFFICER, acting=True) == "403"
    assert await visible(notify_db, alerts_sent["rude"], OFFICER) == "404"
    async with notify_db.transaction() as s:
        await s.execute(update(Staff).where(Staff.id == "officer").values(department_id=None))
    assert await inbox_ids(notify_db, OFFICER) == set()
    assert await visible(notify_db, alerts_sent["food"], OFFICER) == "404"
    # Back in the department, the copy is theirs to read again; deactivated, it is not.
    async with notify_db.transaction() as s:
        await s.execute(update(Staff).where(Staff.id == "officer").values(department_id="hq_food_safety"))
    assert await visible(notify_db, alerts_sent["food"], OFFICER) == "200"
    async with notify_db.transaction() as s:
        await s.execute(update(Staff).where(Staff.id == "officer").values(active=False))
    assert await visible(notify_db, alerts_sent["food"], OFFICER) == "404"


@pytest.fixture
async def notify(databases: DatabaseFactory) -> AsyncIterator[Notify]:
    service = await make_notify(databases, auth.hash_password(PASSWORD))
    try:
        yield service
    finally:
        await service.database.dispose()


async def test_reading_an_alert_is_audited_with_its_customer(notify: Notify) -> None:
    """A read of an alert is a read of its customer's story: the entry names them, so who read a
    customer's data can be listed for them (it named nobody: `customer_id` null on every read)."""
    created = await raise_alert(
        notify.database, Feedback(id="f-read", category="wait_time", text="waited"), now=time.time(),
        customer=known("c-read"),
    )  # fmt: skip
    assert created is not None
    headers = bearer(notify, "shift_lead", stores=("s1",))
    async with notify.client() as client:
        assert (await client.get(f"/v1/alerts/{created.alert.id}", headers=headers)).status_code == 200
        audit = await client.get("/v1/audit", params={"action": "alert.read"}, headers=ADMIN)
    (entry,) = audit.json()["entries"]
    assert entry["target"] == f"alert:{created.alert.id}"
    assert entry["detail"] == {"customer_id": "c-read", "store_id": "s1"}
