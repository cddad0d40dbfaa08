"""gRPC FeedbackService: read a feedback item, record an outcome (translated to and from `cases`),
correct a classification on a staff member's behalf (`corrections`, with their own token);
domain errors become status codes in the platform's method guard."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass

from grpc import aio
from pydantic import TypeAdapter, ValidationError

from voc.feedback.v1 import feedback_pb2, feedback_pb2_grpc
from voc_feedback import corrections, keys, listing, messages
from voc_feedback.cases import CaseEvent, record_case_event
from voc_feedback.follow_up_links import FollowUpLinks
from voc_feedback.models import processed_table
from voc_platform import dbsync
from voc_platform.audit import Audit
from voc_platform.db import Database
from voc_platform.errors import Invalid, NotFound, Unauthenticated
from voc_platform.fields import MAX_RESOLUTION_NOTE_CHARS, RESOLUTION_OUTCOMES, DirectoryId
from voc_platform.identity import Identity, Permission
from voc_platform.moments import event_time_problem
from voc_platform.outbox import mark_processed

SERVICE_NAME = feedback_pb2.DESCRIPTOR.services_by_name["FeedbackService"].full_name

#: A feedback id (`feedback.id`: a UUID); a longer one names nothing and is refused, not looked up.
FEEDBACK_ID_CHARS = 36
#: `feedback_timeline.event_id` holds 64, less the ":parent" a reopened case's copy of the step adds.
MAX_EVENT_ID_CHARS = 57
MAX_ALERT_ID_CHARS = 36  # notify's alert ids (`alerts.id`: a UUID)
_STAFF_ID: TypeAdapter[str] = TypeAdapter(DirectoryId)  # the REST rule for a staff id


def checked_feedback_id(value: str) -> str:
    """A request's feedback id, refused when it cannot be one (never echoed: it may be megabytes)."""
    if not value or len(value) > FEEDBACK_ID_CHARS:
        raise Invalid(f"feedback_id must be a feedback id (1 to {FEEDBACK_ID_CHARS} characters)")
    return value


@dataclass(eq=False)
class FeedbackServicer(feedback_pb2_grpc.FeedbackServiceServicer):
    database: Database
    links: FollowUpLinks
    _: KW_ONLY
    identity: Identity
    audit: Audit

    async def GetFeedback(
        self, request: feedback_pb2.GetFeedbackRequest, context: aio.ServicerContext
    ) -> feedback_pb2.GetFeedbackResponse:
        feedback_id = checked_feedback_id(request.feedback_id)
        async with self.database.session() as session:
            found = await listing.get_feedback(session, feedback_id=feedback_id)
        if found is None:
            raise NotFound(f"no feedback {feedback_id}")
        row = found.row
        return feedback_pb2.GetFeedbackResponse(
            feedback=feedback_pb2.Feedback(
                facts=messages.feedback_facts(row),
                text=row.text or "",
                customer_id=row.customer_id or "",
                status=row.status,
                received_at_ms=int(row.received_at * 1000),
            )
        )

    async def RecordOutcome(
        self, request: feedback_pb2.RecordOutcomeRequest, context: aio.ServicerContext
    ) -> feedback_pb2.RecordOutcomeResponse:
        step = outcome_step(request)
        async with self.database.transaction() as session:
            if request.event_id and not await mark_processed(
                session, processed_table, consumer="feedback-grpc", event_id=request.event_id
            ):
                found = await listing.get_feedback(session, feedback_id=request.feedback_id)
                return feedback_pb2.RecordOutcomeResponse(status=found.row.status if found else "")
            status = await record_case_event(session, step, follow_up=self.links)
        if status is None:  # after the commit: the event id stays processed
            raise NotFound(f"no feedback {request.feedback_id}")
        return feedback_pb2.RecordOutcomeResponse(status=status)

    async def AuthorizeStore(
        self, request: feedback_pb2.AuthorizeStoreRequest, context: aio.ServicerContext
    ) -> feedback_pb2.AuthorizeStoreResponse:
        """Whether the store exists and which stores a store-app key may act for (profile's
        check-ins authenticate the keys feedback issued through this)."""
        found = await dbsync.read(
            self.database, keys.authorize_store, store_id=request.store_id, api_key=request.api_key
        )
        return feedback_pb2.AuthorizeStoreResponse(
            store_known=found.store_known, key_valid=found.key_valid, key_store_ids=found.key_store_ids
        )

    async def CorrectClassification(
        self, request: feedback_pb2.CorrectClassificationRequest, context: aio.ServicerContext
    ) -> feedback_pb2.CorrectClassificationResponse:
        """The staff app's correction, relayed by notify with the staff member's own token:
        verified here and held to the same rule as the REST route (permission, store scope,
        taxonomy), so feedback stays the one judge of who may correct what."""
        caller = self.identity.caller(request.access_token)
        if caller is None:
            raise Unauthenticated("A staff access token is needed to correct a classification.")
        caller.require(Permission.CLASSIFICATION_CORRECT)
        checked_feedback_id(request.feedback_id)
        labels = corrections.Labels(request.sentiment or None, request.category or None)  # '': not given
        async with self.database.transaction() as session:
            done = await corrections.correct(
                session, feedback_id=request.feedback_id, labels=labels, caller=caller, audit=self.audit
            )
        return feedback_pb2.CorrectClassificationResponse(
            **corrections.message_fields(done.correction), sentiment=done.sentiment, category=done.category
        )


def outcome_step(request: feedback_pb2.RecordOutcomeRequest) -> CaseEvent:
    """The request as a case step (an acknowledgement, or a resolution with its outcome)."""
    checked_feedback_id(request.feedback_id)
    if request.status not in ("acknowledged", "resolved"):
        raise Invalid("status must be acknowledged or resolved")
    if request.status == "resolved" and not request.outcome:
        raise Invalid("a resolution needs an outcome")
    if request.outcome and request.outcome not in RESOLUTION_OUTCOMES:
        raise Invalid(f"outcome must be one of {', '.join(RESOLUTION_OUTCOMES)}")
    if len(request.note) > MAX_RESOLUTION_NOTE_CHARS:
        raise Invalid(f"note is longer than {MAX_RESOLUTION_NOTE_CHARS} characters")
    if len(request.alert_id) > MAX_ALERT_ID_CHARS:
        raise Invalid(f"alert_id is longer than {MAX_ALERT_ID_CHARS} characters")
    if len(request.event_id) > MAX_EVENT_ID_CHARS:
        raise Invalid(f"event_id is longer than {MAX_EVENT_ID_CHARS} characters")
    if request.staff_id:
        try:
            _STAFF_ID.validate_python(request.staff_id)
        except ValidationError:
            raise Invalid("staff_id must be a staff id (up to 64 letters, digits, '_', '-', '.')") from None
    # A stored time every reader turns back into a date: the same window as any event time.
    if request.at_ms and (problem := event_time_problem(request.at_ms / 1000)) is not None:
        raise Invalid(f"at_ms {problem}")
    return CaseEvent(
        feedback_id=request.feedback_id,
        status=request.status,
        at=request.at_ms / 1000 if request.at_ms else time.time(),
        actor=f"staff:{request.staff_id}" if request.staff_id else "grpc",
        detail={"alert_id": request.alert_id, "outcome": request.outcome, "note": request.note},
        event_id=request.event_id or None,
    )


def register(
    database: Database, links: FollowUpLinks, *, identity: Identity, audit: Audit
) -> list[Callable[[aio.Server], None]]:
    servicer = FeedbackServicer(database, links, identity=identity, audit=audit)
    return [lambda server: feedback_pb2_grpc.add_FeedbackServiceServicer_to_server(servicer, server)]
