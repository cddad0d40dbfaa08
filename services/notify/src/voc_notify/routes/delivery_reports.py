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
from voc_notify.channels.bounces import UnreadableMail, read_dsn
from voc_notify.deps import SettingsDep
from voc_notify.schemas import DeliveryReportIn, DeliveryReportsIn
from voc_platform.constant_time import same_secret
from voc_platform.errors import BadRequest, Conflict, Invalid, Unauthenticated, Unsupported
from voc_platform.http import DatabaseDep, RequiredBearerDep
from voc_platform.masking import mask_text

router = APIRouter(prefix="/v1/follow-ups", tags=["follow-ups"])

_REPORTS: TypeAdapter[DeliveryReportIn | list[DeliveryReportIn]] = TypeAdapter(DeliveryReportsIn)
_REPORT_SCHEMA = TypeAdapter(DeliveryReportIn).json_schema()
_BODY = {
    "requestBody": {
        "required": True,
        "description": "A gateway's report (JSON: one, or a list of up to 100), or a bounce: the "
        "delivery status notification mail as the bounce mailbox received it (message/rfc822).",
        "content": {
            "application/json": {
                "schema": {
                    "anyOf": [
                        _REPORT_SCHEMA,
                        {"type": "array", "items": _REPORT_SCHEMA, "minItems": 1, "maxItems": 100},
                    ]
                }
            },
            "message/rfc822": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.post("/delivery-reports", responses={401: {}, 409: {}, 415: {}, 422: {}}, openapi_extra=_BODY)
async def delivery_report(
    request: Request, credentials: RequiredBearerDep, settings: SettingsDep, database: DatabaseDep
) -> dict[str, Any]:
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
        reports = (
            [
                delivery_reports.DeliveryReport(
                    bounce.message_id, bounce.outcome, bounce.reason, channel="email"
                )
            ]
            if bounce
            else []
        )
        ignored = 0 if bounce else 1  # an auto-reply, or a DSN of no final word: nothing to record
    elif media_type in ("application/json", ""):
        reports = [_of(report) for report in _parsed(raw)]
    else:
        raise Unsupported("Send a gateway's report as application/json or a bounce mail as message/rfc822.")
    tally = await delivery_reports.record(database, reports, sms_fallback=bool(settings.sms_gateway_url))
    if tally.sending:
        raise Conflict(
            f"{len(tally.sending)} of {len(reports)} report(s) name a message whose send is still being "
            "recorded; send again in a few seconds (the others are recorded, and each report counts once).",
            headers={"Retry-After": "5"},
        )
    return {
        "recorded": tally.recorded,
        "duplicates": tally.duplicates,
        "unknown": tally.unknown,
        "not_sent": tally.not_sent,
        "ignored": ignored,
    }


def _parsed(raw: bytes) -> list[DeliveryReportIn]:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("The body is not valid JSON.") from exc
    try:
        parsed = _REPORTS.validate_python(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        ) from exc
    return parsed if isinstance(parsed, list) else [parsed]


def _of(report: DeliveryReportIn) -> delivery_reports.DeliveryReport:
    outcome = "delivered" if report.status == "delivered" else "undelivered"
    reason = mask_text(" ".join((report.error or "").split()), limit=200)
    return delivery_reports.DeliveryReport(report.message_id, outcome, reason, channel=report.channel or "")
