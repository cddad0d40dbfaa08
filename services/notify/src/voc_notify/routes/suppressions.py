"""Mail suppressions (cx_admin or the admin token): the addresses no follow-up is mailed to
because their server refused them for good, the latest listed or one found by its address (in
a POST body: an address stays out of URLs), and lifted once the customer has
fixed their mailbox (audited). The rule lives in `suppressions`."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from voc_notify import suppressions
from voc_notify.deps import AuditDep, SettingsDep
from voc_notify.schemas import MailSuppressionOut, MailSuppressionSearchIn, MailSuppressionsOut
from voc_platform.http import CallerDep, DatabaseDep, SessionDep, require_admin
from voc_platform.records import copy_fields

router = APIRouter(
    prefix="/v1/admin/mail-suppressions", tags=["follow-ups"], dependencies=[Depends(require_admin)]
)
AddressKey = Annotated[str, Path(min_length=64, max_length=64, pattern="^[0-9a-f]{64}$")]


def _out(found: suppressions.Suppression) -> MailSuppressionOut:
    return copy_fields(MailSuppressionOut, found, expires_at=found.expires_at)


@router.get("")
async def list_mail_suppressions(
    session: SessionDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> MailSuppressionsOut:
    """The suppressions in force, the latest first."""
    found = await suppressions.listing(session, key=None, limit=limit, now=time.time())
    return MailSuppressionsOut(suppressions=[_out(s) for s in found])


@router.post("/search", responses={422: {}})
async def search_mail_suppressions(
    body: MailSuppressionSearchIn, session: SessionDep, settings: SettingsDep
) -> MailSuppressionsOut:
    """The suppression of one address, if it is suppressed (none: an empty list). notify keeps
    only a keyed hash of each address, so an address is found, never listed in full."""
    key = suppressions.address_key(body.email, secret=settings.jwt_secret)
    found = await suppressions.listing(session, key=key, limit=1, now=time.time())
    return MailSuppressionsOut(suppressions=[_out(s) for s in found])


@router.delete("/{address_key}", status_code=204, responses={404: {}})
async def lift_mail_suppression(
    address_key: AddressKey, database: DatabaseDep, caller: CallerDep, audit: AuditDep
) -> Response:
    """Mail the address again (its next follow-up goes by e-mail)."""
    async with database.transaction() as session:
        lifted = await suppressions.lift(session, key=address_key)
        await audit.record(
            session,
            actor=caller.actor,
            action="mail_suppression.lifted",
            target=f"mail-suppression:{address_key}",
            detail={"recipient": lifted.recipient, "reason": lifted.reason},
        )
    return Response(status_code=204)
