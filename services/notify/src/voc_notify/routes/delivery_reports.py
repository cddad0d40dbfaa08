"""Delivery reports of follow-up messages (#19): a bounce (the DSN mail itself, piped from the
bounce mailbox) or an SMS gateway's report (JSON), with the delivery-report token as bearer.
What each says lands on the case timeline (`delivery_reports`)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from voc_notify import delivery_reports
from voc_notify.channels import DeliveryReport, server_said
from voc_notify.channels.bounces import UnreadableMail, read_dsn
from voc_notify.channels.mail import message_domain
from voc_notify.deps import SettingsDep
from voc_notify.schemas import MAX_DELIVERY_REPORTS, DeliveryReportBatch, DeliveryReportIn, DeliveryReportsOut
from voc_platform.constant_time import same_secret
from voc_platform.errors import BadRequest, Conflict, Invalid, Unauthenticated, Unsupported
from voc_platform.http import DatabaseDep, RequiredBearerDep

PATH = "/v1/follow-ups/delivery-reports"
router = APIRouter(tags=["follow-ups"])

_ONE: TypeAdapter[DeliveryReportIn] = TypeAdapter(DeliveryReportIn)
_BATCH: TypeAdapter[list[DeliveryReportIn]] = TypeAdapter(DeliveryReportBatch)
_BODY = {
    "requestBody": {
        "required": True,
        "description": f"A gateway's report (JSON: one, or a list of up to {MAX_DELIVERY_REPORTS}), or a "
        "bounce: the delivery status notification mail as the bounce mailbox received it (message/rfc822).",
        "content": {
            "application/json": {"schema": {"anyOf": [_ONE.json_schema(), _BATCH.json_schema()]}},
            "message/rfc822": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.post(PATH, responses={401: {}, 409: {}, 413: {}, 415: {}, 422: {}}, openapi_extra=_BODY)
async def delivery_report(
    request: Request, credentials: RequiredBearerDep, settings: SettingsDep, database: DatabaseDep
) -> DeliveryReportsOut:
    """Record what became of follow-up messages. Each report counts once however often it comes;
    a message whose send is still being recorded answers 409 with Retry-After (the others in
    the batch are recorded: send the batch again)."""
    if not same_secret(credentials.credentials, settings.delivery_report_token):
        raise Unauthenticated(
            "Send the delivery-report token (VOC_DELIVERY_REPORT_TOKEN; unset, none is taken)."
        )
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    ignored = 0
    if media_type == "message/rfc822":
        if not raw.strip():
            raise Invalid("The body is empty: send the bounce mail as received.", field="body")
        try:
            bounce = read_dsn(raw)
        except UnreadableMail as exc:
            raise Invalid(f"The mail cannot be read as a delivery report: {exc}.", field="body") from exc
        reports = [bounce] if bounce else []
        ignored = 0 if bounce else 1  # an auto-reply, or a DSN naming no message: nothing to record
    elif media_type in ("application/json", ""):
        reports = [_of(report) for report in _parsed(raw)]
    else:
        raise Unsupported("Send a gateway's report as application/json or a bounce mail as message/rfc822.")
    tally = await delivery_reports.record(
        database,
        reports,
        mail_domain=message_domain(settings.mail_from) if settings.mail_from else "",
        sms_fallback=bool(settings.sms_gateway_url),
    )
    if tally.sending:
        raise Conflict(
            f"{len(tally.sending)} of {len(reports)} report(s) name a message whose send is still being "
            "recorded; send again in a few seconds (the others are recorded, and each report counts once).",
            headers={"Retry-After": "5"},
        )
    return DeliveryReportsOut(
        recorded=tally.recorded,
        duplicates=tally.duplicates,
        unknown=tally.unknown,
        not_sent=tally.not_sent,
        ignored=ignored,
    )


def _parsed(raw: bytes) -> list[DeliveryReportIn]:
    """One report (an object) or a batch (a list), each validated as what it is, so an error
    names its field: `body.status`, `body.3.status`, or `body` for a batch of more than 100."""
    try:
        data: Any = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # not JSON, or nested past what the parser reads
        raise BadRequest("The body is not valid JSON.") from exc
    try:
        return _BATCH.validate_python(data) if isinstance(data, list) else [_ONE.validate_python(data)]
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        ) from exc


def _of(report: DeliveryReportIn) -> DeliveryReport:
    return DeliveryReport(
        report.message_id,
        "delivered" if report.status == "delivered" else "undelivered",
        server_said(report.error or ""),
        channel=report.channel,
    )
