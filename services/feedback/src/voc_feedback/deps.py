"""What the feedback routes declare in their signatures: settings and what is built from them, the
reader's store scope (admin token, staff token or store key), and the reading rules every list
and report shares (admin routes declare the platform's `require(permission)`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Literal, NamedTuple

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy.ext.asyncio import AsyncSession

from voc_feedback import keys, stores
from voc_feedback.analytics import Sla
from voc_feedback.follow_up_links import FollowUpLinks
from voc_feedback.intake import IntakeParts, authenticate_store_key
from voc_feedback.keys import KeyIdentity
from voc_feedback.listing import FeedbackFilter, Scope
from voc_feedback.model_registry import LiveClassifier
from voc_feedback.schemas import Channel
from voc_feedback.settings import Settings
from voc_platform import taxonomy
from voc_platform.audit import Audit
from voc_platform.errors import FieldError, Forbidden, Invalid
from voc_platform.fields import DirectoryIdQuery
from voc_platform.http import (
    RequiredBearerDep,
    SessionDep,
    app_state,
    bearer_token,
    query_instant,
    reject_unknown_params,
)
from voc_platform.identity import Actor, Caller, Identity, Permission
from voc_platform.ratelimit import RateLimiter

# Dependencies are coroutines: a plain function would run in the thread pool on every request.
SettingsDep = Annotated[Settings, Depends(app_state("settings"))]
RateLimiterDep = Annotated[RateLimiter, Depends(app_state("rate_limiter"))]  # per-key token buckets


class StoreIntake(NamedTuple):
    """What intake needs of the app and the submitting store key, authenticated: one dependency
    (FastAPI spends ~9 us of CPU resolving each, and intake is the busiest route), resolved
    before FastAPI validates the body, so an unknown key gets 401, not the body's field errors."""

    parts: IntakeParts
    api_key: KeyIdentity


async def get_store_intake(request: Request, credentials: RequiredBearerDep) -> StoreIntake:
    state = request.app.state
    settings = state.settings
    parts = IntakeParts(
        state.database, state.rate_limiter, settings.idempotency_ttl_seconds, settings.max_text_chars
    )
    return StoreIntake(parts, await authenticate_store_key(parts, bearer_token(credentials)))


StoreIntakeDep = Annotated[StoreIntake, Depends(get_store_intake)]


async def get_follow_up_links(settings: SettingsDep) -> FollowUpLinks:
    return FollowUpLinks.of(settings)


FollowUpLinksDep = Annotated[FollowUpLinks, Depends(get_follow_up_links)]


async def get_sla(settings: SettingsDep) -> Sla:
    return Sla.of(settings)


SlaDep = Annotated[Sla, Depends(get_sla)]


@dataclass(frozen=True, slots=True)
class Access:
    """What a reader may see: its stores (None: every store), who it is for the audit log, and
    the caller behind a token (None for a store key)."""

    scope: Scope
    actor: Actor
    caller: Caller | None = None
    #: A store key's stores' areas: the only `area_id` it may name.
    key_areas: frozenset[str] = frozenset()

    @property
    def is_admin(self) -> bool:
        return self.caller is not None and self.caller.is_admin

    @property
    def personal_data(self) -> bool:
        """Whether the reader sees what identifies a customer in an item: the phone or e-mail a
        customer typed, and the customer id. A store key reads its own submissions whole; staff
        only with the customer records' permission (not the analyst, who takes no personal data
        out, API.md)."""
        return self.caller is None or self.caller.may(Permission.CUSTOMER_READ)

    def check(self, params: FilterParams) -> None:
        """403 for a store (or, for staff, an area) outside the reader's scope: the answer
        would be empty, and an empty answer tells as much as a count."""
        if self.scope is not None and params.store_id and params.store_id not in self.scope:
            raise Forbidden(
                f"Store '{params.store_id}' is outside what you may see.",
                errors=[FieldError("query.store_id", "outside your stores")],
            )
        if self.caller is not None:
            self.caller.check_area(params.area_id)
        elif params.area_id and params.area_id not in self.key_areas:
            raise Forbidden(
                f"Area '{params.area_id}' is outside what you may see.",
                errors=[FieldError("query.area_id", "outside your stores' areas")],
            )


@dataclass(frozen=True, slots=True)
class Reader:
    """A caller of the reading routes, not yet checked. A route's query dependency takes all
    its query parameters and calls `query_scope` in its body, which FastAPI runs only once they
    validated: a malformed query is answered 422 before the key is checked or spends a token.
    A request with no credentials at all is 401 before that (`RequiredBearerDep`).
    (A scope dependency of its own would run first: dependencies resolve before parameters.)"""

    credentials: HTTPAuthorizationCredentials | None
    session: AsyncSession
    settings: Settings
    limiter: RateLimiter
    identity: Identity

    async def scope(self, permission: Permission) -> Access:
        """What the caller may read: every store for the admin token (compared in constant
        time), a staff token's scope when its role has `permission` (403 otherwise; 401 when
        expired, foreign or revoked), a store key's own stores otherwise (401 for an unknown
        key; throttled like intake, 429)."""
        token = bearer_token(self.credentials)
        caller = self.identity.caller(token)
        if caller is not None:
            caller.require(permission)
            return Access(caller.scope, caller.actor, caller)
        api_key = await keys.authenticate_in(self.session, key=token)
        self.limiter.admit(api_key.id)
        areas = await stores.areas_of(self.session, api_key.store_ids)
        return Access(api_key.store_ids, Actor(f"key:{api_key.id}"), key_areas=areas)

    async def query_scope(
        self, request: Request, permission: Permission, *, allowed: Iterable[str]
    ) -> Access:
        """`scope`, after refusing query parameters the route does not take (422: a typo must
        not widen a filter)."""
        reject_unknown_params(request, allowed)
        return await self.scope(permission)


async def get_reader(
    credentials: RequiredBearerDep,
    session: SessionDep,
    settings: SettingsDep,
    limiter: RateLimiterDep,
    request: Request,
) -> Reader:
    return Reader(credentials, session, settings, limiter, request.app.state.identity)


ReaderDep = Annotated[Reader, Depends(get_reader)]
AuditDep = Annotated[Audit, Depends(app_state("audit"))]
ClassifierDep = Annotated[LiveClassifier, Depends(app_state("classifier"))]  # what this replica serves


# The filter's query parameters, as the reading routes declare them.
FILTER_PARAMS = frozenset({"store_id", "area_id", "channel", "category", "sentiment", "status", "from", "to"})
IdQuery = DirectoryIdQuery
Sentiment = Literal["positive", "neutral", "negative"]
Status = Literal["received", "alerted", "acknowledged", "resolved", "followed_up", "reopened"]
#: A category of the published taxonomy, retired ones too (history); checked in `filter_params`.
CategoryQuery = Annotated[str | None, Query(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")]


@dataclass(frozen=True, slots=True)
class FilterParams:
    """The filter's values besides the period: all of them for the list and the export, the
    place alone for the analytics."""

    store_id: str | None
    area_id: str | None
    channel: Channel | None = None
    category: str | None = None
    sentiment: str | None = None
    status: str | None = None


async def filter_params(
    store_id: IdQuery = None,
    area_id: IdQuery = None,
    channel: Channel | None = None,
    category: CategoryQuery = None,
    sentiment: Sentiment | None = None,
    status: Status | None = None,
) -> FilterParams:
    if category is not None and category not in taxonomy.current().known:
        raise Invalid(f"Unknown category '{category}'.", field="query.category")
    return FilterParams(store_id, area_id, channel, category, sentiment, status)


FilterParamsDep = Annotated[FilterParams, Depends(filter_params)]


def feedback_filter(
    access: Access, params: FilterParams, *, since: str | None, until: str | None
) -> FeedbackFilter:
    """The reader's filter: its scope in the query, a store or area outside it refused (403),
    the period parsed, 'to' after 'from'."""
    access.check(params)
    start = parse_period(since, "from")
    end = parse_period(until, "to")
    if start is not None and end is not None and end <= start:
        raise Invalid("'to' must be after 'from'.", errors=[FieldError("query.to", "before 'from'")])
    return FeedbackFilter(
        scope_store_ids=access.scope,
        store_id=params.store_id,
        area_id=params.area_id,
        channel=params.channel.value if params.channel else None,
        category=params.category,
        sentiment=params.sentiment,
        status=params.status,
        since=start,
        until=end,
    )


def parse_period(value: str | None, field: str) -> float | None:
    """ISO 8601 with an offset, or a date (midnight UTC)."""
    if value is None or value == "":
        return None
    return query_instant(value, field)
