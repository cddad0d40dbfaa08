"""Stream tickets on their own: one connection each, within 60 seconds, as the staff member
(and the stores) the access token named."""

from __future__ import annotations

import time

import pytest

from voc_notify import auth
from voc_notify.auth import Principal
from voc_platform.db import Database
from voc_platform.errors import Unauthenticated


async def test_a_ticket_opens_one_stream_within_a_minute(notify_db: Database) -> None:
    lead = Principal("lead", "shift_lead", ("s1", "s2"), None)
    now = time.time()
    ticket = await auth.issue_stream_ticket(notify_db, principal=lead, now=now)
    assert await auth.redeem_stream_ticket(notify_db, ticket=ticket, now=now + 59) == lead
    with pytest.raises(Unauthenticated):
        await auth.redeem_stream_ticket(notify_db, ticket=ticket, now=now + 59)

    late = await auth.issue_stream_ticket(notify_db, principal=lead, now=now)
    with pytest.raises(Unauthenticated):
        await auth.redeem_stream_ticket(notify_db, ticket=late, now=now + 61)
    with pytest.raises(Unauthenticated):  # and it is gone
        await auth.redeem_stream_ticket(notify_db, ticket=late, now=now)
