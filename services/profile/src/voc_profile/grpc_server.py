"""gRPC ProfileService: ResolveCustomer, GetCustomerContext (and its batch), ListCustomers,
GetContactPoints and GetOutreachReport.
Messages in, domain calls, messages out; domain errors become a status in the method guard."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from grpc import aio

from voc.profile.v1 import profile_pb2, profile_pb2_grpc
from voc_platform import dbsync
from voc_platform.audit import Audit
from voc_platform.db import Database
from voc_platform.errors import Invalid
from voc_platform.grpc import ItemFailed, check_batch_size, item_error
from voc_profile import contact_points, context, lists, outreach, resolution
from voc_profile.audit import SERVICE, target_of
from voc_profile.context import Context
from voc_profile.facts import Reason, feedback_item
from voc_profile.identity import InvalidIdentifier, given_name, mask_name, mask_phone, normalize, of_message
from voc_profile.settings import Settings
from voc_profile.signals import SIGNALS

SERVICE_NAME = profile_pb2.DESCRIPTOR.services_by_name["ProfileService"].full_name


@dataclasses.dataclass(eq=False)
class ProfileServicer(profile_pb2_grpc.ProfileServiceServicer):
    database: Database
    settings: Settings
    trail: Audit

    async def ResolveCustomer(
        self, request: profile_pb2.ResolveCustomerRequest, context: aio.ServicerContext
    ) -> profile_pb2.ResolveCustomerResponse:
        ids = request.identifiers
        try:  # held to the REST schemas' rules: what REST refuses is not stored this way either
            identifiers = of_message(ids, region=self.settings.default_region)
            name = given_name(ids.name, strict=True)
        except InvalidIdentifier as exc:
            raise Invalid(f"{exc.field}: {exc}") from None
        if not identifiers:
            return profile_pb2.ResolveCustomerResponse(anonymous=True)
        async with self.database.transaction() as session:
            res = await resolution.resolve(
                session,
                identifiers=identifiers,
                name=name,
                create_if_missing=request.create_if_missing,
            )
        return profile_pb2.ResolveCustomerResponse(customer_id=res.customer_id or "", created=res.created)

    async def GetCustomerContext(
        self, request: profile_pb2.GetCustomerContextRequest, context: aio.ServicerContext
    ) -> profile_pb2.GetCustomerContextResponse:
        return await self._context(request)

    async def BatchGetCustomerContexts(
        self, request: profile_pb2.BatchGetCustomerContextsRequest, context: aio.ServicerContext
    ) -> profile_pb2.BatchGetCustomerContextsResponse:
        await check_batch_size(context, len(request.requests))
        # Concurrently: the reads each take one hop, and the first contacts' writes share a
        # transaction (dbsync group commit on SQLite).
        items = [asyncio.ensure_future(self._context(item)) for item in request.requests]
        if items:
            await _until_deadline(items, context.time_remaining())
        reply = profile_pb2.BatchGetCustomerContextsResponse()
        add = reply.results.add
        for task in items:
            if task.cancelled():
                late = ItemFailed(grpc.StatusCode.DEADLINE_EXCEEDED, "not ready before the deadline")
                add(error=item_error(late))
            elif (exc := task.exception()) is not None:
                add(error=item_error(exc))
            else:
                add(response=task.result())
        return reply

    async def _context(
        self, request: profile_pb2.GetCustomerContextRequest
    ) -> profile_pb2.GetCustomerContextResponse:
        current = feedback_item(request.current_feedback, reopens_id=request.current_feedback.reopens_id)
        if request.customer_id:
            ctx = await dbsync.read(
                self.database,
                context.read_context,
                customer_id=request.customer_id,
                settings=self.settings,
                current=current,
            )
        else:
            i = request.identifiers
            # A malformed identifier is dropped, never fails the alert; the others still count.
            ids = of_message(i, region=self.settings.default_region, dropped=[])
            if not ids:
                return profile_pb2.GetCustomerContextResponse(
                    context=profile_pb2.CustomerContext(found=False)
                )
            ctx = await context.context_for(
                self.database,
                identifiers=ids,
                name=given_name(i.name, strict=False),
                settings=self.settings,
                current=current,
                trigger=f"feedback {request.current_feedback.feedback_id}".strip(),
            )
        if ctx.customer is not None:
            self.trail.read(actor=SERVICE, action="grpc_context", target=target_of(ctx.customer.id))
        return profile_pb2.GetCustomerContextResponse(context=context_message(ctx))

    async def GetContactPoints(
        self, request: profile_pb2.GetContactPointsRequest, context: aio.ServicerContext
    ) -> profile_pb2.GetContactPointsResponse:
        if request.customer_id:
            points = await dbsync.read(
                self.database, contact_points.contact_points, customer_id=request.customer_id
            )
        elif request.email or request.phone:
            # What cannot be read as an address or a number identifies nobody.
            ids = normalize(
                email=request.email, phone=request.phone, region=self.settings.default_region, dropped=[]
            )
            points = await dbsync.read(self.database, contact_points.by_contact, identifiers=ids)
        else:
            raise Invalid("customer_id, email or phone: required")
        if points.found and not points.erased:
            self.trail.read(actor=SERVICE, action="grpc_contact_points", target=target_of(points.customer_id))
        # The reply is the lookup's fields under their own names (a follow-up's, not per feedback).
        return profile_pb2.GetContactPointsResponse(**dataclasses.asdict(points))

    async def GetOutreachReport(
        self, request: profile_pb2.GetOutreachReportRequest, context: aio.ServicerContext
    ) -> profile_pb2.GetOutreachReportResponse:
        """The outreach report for the stores the caller (feedback's dashboard) checked."""
        # 0 is unset; the others within the period REST's `from`/`to` accept.
        since = request.from_ms / 1000 if request.from_ms else None
        until = request.to_ms / 1000 if request.to_ms else None
        for bound, name in ((since, "from_ms"), (until, "to_ms")):
            if bound is not None:
                outreach.check_period_bound(bound, field=name)
        if since is not None and until is not None and until <= since:
            raise Invalid("to_ms must be after from_ms")
        stores = None if request.every_store else tuple(request.store_ids)
        async with self.database.session() as session:
            found = await outreach.report(
                session,
                stores=stores,
                window_days=self.settings.churn_window_days,
                since=since,
                until=until,
            )

        return profile_pb2.GetOutreachReportResponse(
            rows=[_report_row(r) for r in found.rows],
            window_days=found.window_days,
            # Rounded, not truncated: 1234.567 * 1000 is 1234566.99...
            from_ms=round(found.since * 1000),
            to_ms=round(found.until * 1000),
        )

    async def ListCustomers(
        self, request: profile_pb2.ListCustomersRequest, context: aio.ServicerContext
    ) -> profile_pb2.ListCustomersResponse:
        if request.signal not in SIGNALS:
            raise Invalid(f"signal must be one of {', '.join(SIGNALS)}")
        if request.page_size < 0 or request.page_size > 500:
            raise Invalid("page_size must be 0..500")
        after = decode_page_token(request.page_token) if request.page_token else None
        async with self.database.session() as session:
            page = await lists.list_by_signal(
                session,
                signal=request.signal,
                settings=self.settings,
                limit=request.page_size or 50,
                after=after,
            )
        self.trail.read(actor=SERVICE, action="grpc_list", detail={"signal": request.signal})
        return profile_pb2.ListCustomersResponse(
            customers=[
                profile_pb2.CustomerSummary(
                    customer_id=item.customer.id,
                    masked_name=mask_name(item.customer.name),
                    tier=item.customer.tier,
                    complaint_count_90d=item.complaint_count_90d,
                    chronic_rank=item.chronic_rank,
                    reasons=_reasons(item.reasons),
                )
                for item in page.customers
            ],
            next_page_token=f"{page.next_after[0]}:{page.next_after[1]}" if page.next_after else "",
        )


async def _until_deadline(items: Sequence[asyncio.Future[Any]], remaining: float | None) -> None:
    """Wait for the items; those still waiting shortly before the caller's deadline (a first
    contact behind a long write) are cancelled and fail alone, as their own unary calls would
    have: one slow item must not make the whole batch miss the deadline."""
    budget = None if remaining is None else max(0.0, remaining * 0.9 - 0.01)
    try:
        _, late = await asyncio.wait(items, timeout=budget)
    except asyncio.CancelledError:  # the call itself was cancelled
        for task in items:
            task.cancel()
        raise
    for task in late:
        task.cancel()
    if late:
        await asyncio.wait(late)  # let the cancellations land


def decode_page_token(token: str) -> lists.After:
    """The keyset position a ListCustomers page token names ("<count>:<customer id>"); its
    values are checked as a REST cursor's are (`lists.keyset_after`)."""
    count, sep, customer_id = token.partition(":")
    # ASCII digits only ('²'.isdigit() is true), and few enough for int() to take.
    after = lists.keyset_after(int(count), customer_id) if sep and _COUNT.fullmatch(count) else None
    if after is None:
        raise Invalid("page_token is not one this service issued")
    return after


_COUNT = re.compile(r"[0-9]{1,10}")


def _report_row(row: outreach.ReportRow) -> profile_pb2.OutreachReportRow:
    """A report row as its message, field for field; a rate with nothing to divide by (None,
    the row's only optional values) is -1."""
    values: dict[str, Any] = {k: -1.0 if v is None else v for k, v in dataclasses.asdict(row).items()}
    return profile_pb2.OutreachReportRow(**values)


def _reasons(reasons: list[Reason]) -> list[profile_pb2.SignalReason]:
    return [
        profile_pb2.SignalReason(
            signal=r.signal, reason=r.reason, feedback_ids=r.feedback_ids, reason_ko=r.reason_ko
        )
        for r in reasons
    ]


def context_message(ctx: Context) -> profile_pb2.CustomerContext:
    """The context as a message: what `Context.to_dict` says, built without the dictionaries."""
    c, sig = ctx.customer, ctx.signals
    signals = profile_pb2.Signals(
        repeat_issue=sig.repeat_issue,
        repeat_counts=sig.repeat_counts,
        score_swing=sig.score_swing,
        score_swing_delta=sig.score_swing_delta,
        complaint_count_90d=sig.complaint_count_90d,
        chronic_complainer=sig.chronic_complainer,
        chronic_rank=sig.chronic_rank,
        low_satisfaction=sig.low_satisfaction,
        churn_risk=sig.churn_risk,
        vip=sig.vip,
        reasons=_reasons(sig.reasons),
    )
    if c is None:
        return profile_pb2.CustomerContext(found=False, masked_phone=mask_phone(ctx.phone), signals=signals)
    return profile_pb2.CustomerContext(
        customer_id=c.id,
        found=True,
        name=c.name or "",
        masked_name=mask_name(c.name),
        masked_phone=mask_phone(ctx.phone),
        tier=c.tier or "",
        lifetime_value=c.lifetime_value,
        preferred_language=c.preferred_language or "",
        home_store_id=c.home_store_id or "",
        last_visits=[
            profile_pb2.Visit(store_id=v.store_id, visited_at_ms=int(v.visited_at * 1000), amount=v.amount)
            for v in ctx.visits
        ],
        feedback_count=ctx.feedback_count,
        mean_csat=ctx.mean_csat or 0.0,
        contact_consent=bool(c.contact_consent),  # the context's is "agreed" (None: not stated)
        household_relation=c.household_relation or "",
        household=[
            profile_pb2.HouseholdMember(
                customer_id=m.id,
                masked_name=mask_name(m.name),
                relation=m.household_relation or "",
                tier=m.tier,
            )
            for m in ctx.household
        ],
        recent_feedback=[
            profile_pb2.FeedbackSummary(
                feedback_id=f.feedback_id,
                store_id=f.store_id,
                channel=f.channel,
                category=f.category,
                sentiment=f.sentiment,
                csat=f.csat or 0,
                occurred_at_ms=int(f.occurred_at * 1000),
            )
            for f in reversed(ctx.recent[-5:])
        ],
        recent_contacts=[
            profile_pb2.RecentContact(
                feedback_id=r.feedback_id,
                channel=r.channel,
                store_id=r.store_id,
                occurred_at_ms=int(r.occurred_at * 1000),
                category=r.category,
                sentiment=r.sentiment,
                status=r.status,
                outcome=r.outcome or "",
                excerpt=r.excerpt,
            )
            for r in ctx.contacts
        ],
        signals=signals,
    )


def register(database: Database, settings: Settings, trail: Audit) -> list[Callable[[aio.Server], None]]:
    """What `create_server` adds the service with."""
    servicer = ProfileServicer(database, settings, trail)
    return [lambda server: profile_pb2_grpc.add_ProfileServiceServicer_to_server(servicer, server)]
