"""Stream tickets on their own: one connection each, within 60 seconds, as the staff member
(and the stores) the access token named."""

from __future__ import annotations

import dataclasses
import time

import pytest

from voc_notify import auth
from voc_platform.db import Database
from voc_platform.errors import Unauthenticated
from voc_platform.identity import Principal


async def test_a_ticket_opens_one_stream_within_a_minute(notify_db: Database) -> None:
    lead = Principal("lead", "shift_lead", ("s1", "s2"), None)
    now = time.time()
    ticket = await auth.issue_stream_ticket(notify_db, principal=lead, now=now)
    # The staff member the ticket was issued to, as old as the ticket (a revocation after its
    # issue ends it, and the stream it opens).
    redeemed = await auth.redeem_stream_ticket(notify_db, ticket=ticket, now=now + 59)
    assert redeemed == dataclasses.replace(lead, issued_ms=redeemed.issued_ms)
    assert abs(redeemed.issued_ms - now * 1000) <= 1
    with pytest.raises(Unauthenticated):
        await auth.redeem_stream_ticket(notify_db, ticket=ticket, now=now + 59)

    late = await auth.issue_stream_ticket(notify_db, principal=lead, now=now)
    with pytest.raises(Unauthenticated):
        await auth.redeem_stream_ticket(notify_db, ticket=late, now=now + 61)
    with pytest.raises(Unauthenticated):  # and it is gone
        await auth.redeem_stream_ticket(notify_db, ticket=late, now=now)
