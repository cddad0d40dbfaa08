"""One staff identity for every service: the access tokens notify's login issues (HS256 JWT signed
with the shared `VOC_JWT_SECRET`), verified locally by each service; the roles and the one table
of role -> permissions; the store scope a caller reads within; and the revocation list that ends
a staff member's tokens on every service (`voc.staff.sessions_revoked`).

docs/API.md ("Who may call what") and SECURITY.md describe the same table for readers."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt
import sqlalchemy as sa
from alembic.operations import Operations
from nats.aio.msg import Msg
from sqlalchemy import BigInteger, Column, Float, MetaData, String, Table, select, update

from voc.events.v1 import events_pb2
from voc_platform.bus import ConsumerSpec
from voc_platform.constant_time import same_secret
from voc_platform.db import Database
from voc_platform.dbsync import insert_ignore
from voc_platform.errors import FieldError, Forbidden, Unauthenticated
from voc_platform.periodic import every

log = logging.getLogger(__name__)

ISSUER = "voc-notify"
SUBJECT_REVOKED = "voc.staff.sessions_revoked"
ROLES = ("staff", "shift_lead", "store_manager", "area_manager", "cx_admin", "analyst")
#: Roles that read every store (cx_admin, and the read-only analyst).
EVERY_STORE_ROLES = frozenset({"cx_admin", "analyst"})


class Permission(StrEnum):
    """What a route needs. Each route declares one (`voc_platform.http.require`)."""

    ALERTS = "alerts"  # own alerts: inbox, detail, ack, resolve, receipts, devices, live stream
    ALERT_DELIVERIES = "alerts.deliveries"  # who was pushed an alert, and when
    FEEDBACK_READ = "feedback.read"  # the feedback list and items
    FEEDBACK_EXPORT = "feedback.export"  # the feedback CSV export (texts, customer ids)
    ANALYTICS = "analytics.read"  # analytics, loop KPIs, open cases
    REPORTS = "reports.read"  # profile's revisit report
    OUTREACH = "customers.lists"  # outreach lists by signal (names, tiers)
    OUTREACH_EXPORT = "customers.export"  # the lists as CSV with phone and e-mail
    CUSTOMER_READ = "customers.read"  # a customer's record, context, timeline, merges
    CUSTOMER_ADMIN = "customers.admin"  # CRM upsert, imports, erasure, subject access, undo merge
    DIRECTORY_READ = "directory.read"  # stores, shifts, who is on duty
    DIRECTORY_WRITE = "directory.write"  # stores, staff, CSV import, shifts, overrides, deactivation
    SHIFTS = "directory.shifts"  # the weekly shifts and overrides of staff one manages (their stores, area)
    STAFF_UNLOCK = "staff.unlock"  # lift the login lock of staff one manages
    STORES = "stores.manage"  # feedback's store -> area directory
    API_KEYS = "api_keys.manage"  # store-app API keys: create, rotate, revoke
    PLAYBOOKS = "playbooks.publish"
    TAXONOMY = "taxonomy.manage"  # publish, validate and roll back taxonomy versions (#20 §3)
    PLAYBOOKS_READ = "playbooks.read"  # the playbook library and versions (scripts, compensation limits)
    CLASSIFIER_MODELS = "classifier.models"  # the classifier registry: upload, promote, roll back
    AUDIT = "audit.read"
    OUTREACH_ASSIGN = "outreach.assign"  # assign list customers to staff, see every assignment in scope
    OUTREACH_CONTACT = "outreach.contact"  # one's own assignments: read them, record contacts
    TARGETS = "targets.manage"  # set and remove NPS/CSAT/loop targets (an area manager: their area's)
    CLASSIFICATION_CORRECT = "classification.correct"  # correct an item's sentiment / category (#17)
    CLASSIFIER_TRAINING = "classifier.training"  # the corrections as labelled examples (texts)


P = Permission
_MANAGER = frozenset(
    {
        P.ALERTS,
        P.ALERT_DELIVERIES,
        P.FEEDBACK_READ,
        P.FEEDBACK_EXPORT,
        P.ANALYTICS,
        P.REPORTS,
        P.OUTREACH,
        P.OUTREACH_EXPORT,
        P.CUSTOMER_READ,
        P.DIRECTORY_READ,
        P.STAFF_UNLOCK,
        P.SHIFTS,
        P.OUTREACH_ASSIGN,
        P.OUTREACH_CONTACT,
        P.CLASSIFICATION_CORRECT,
        P.PLAYBOOKS_READ,
    }
)
#: The one table of role -> permissions (docs/API.md shows it). The admin token has every one.
ROLE_PERMISSIONS: Mapping[str, frozenset[Permission]] = {
    # Frontline staff correct the labels of the alerts they work (#17): they read the text.
    # Every role reads the playbook library (what an alert asks of them); nobody without a login.
    "staff": frozenset({P.ALERTS, P.OUTREACH_CONTACT, P.CLASSIFICATION_CORRECT, P.PLAYBOOKS_READ}),
    "shift_lead": frozenset({P.ALERTS, P.OUTREACH_CONTACT, P.CLASSIFICATION_CORRECT, P.PLAYBOOKS_READ}),
    "store_manager": _MANAGER,
    # Targets are set per area and store; a store manager reads them (analytics.read).
    "area_manager": _MANAGER | {P.TARGETS},
    "cx_admin": frozenset(Permission),
    # Read-only across every store, and nothing that carries personal data out: no outreach
    # lists or exports, no customer records, no feedback export, no alerts (their context).
    "analyst": frozenset({P.FEEDBACK_READ, P.ANALYTICS, P.REPORTS, P.PLAYBOOKS_READ}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """The staff member a token names, as its claims say at issue time."""

    staff_id: str
    role: str
    store_ids: tuple[str, ...]
    area_id: str | None
    #: An area manager's area's stores at issue time (the optional `area_stores` claim).
    area_store_ids: tuple[str, ...] = ()
    issued_ms: int = 0
    #: The login session (refresh-token family) the token was issued in (the `sid` claim), so
    #: a logout with only the access token ends that session too.
    session_id: str | None = None

    @property
    def permissions(self) -> frozenset[Permission]:
        return ROLE_PERMISSIONS.get(self.role, frozenset())

    @property
    def scope(self) -> tuple[str, ...] | None:
        """The stores this staff member reads: None for every store (cx_admin, analyst), their
        stores and, for an area manager, their area's."""
        if self.role in EVERY_STORE_ROLES:
            return None
        stores = set(self.store_ids)
        if self.role == "area_manager":
            stores |= set(self.area_store_ids)
        return tuple(sorted(stores))


class TokenError(Exception):
    pass


def issue_token(principal: Principal, *, secret: str, ttl: int, now: float | None = None) -> str:
    """An access token (notify's login is the only issuer)."""
    now = time.time() if now is None else now
    claims: dict[str, Any] = {
        "sub": principal.staff_id,
        "role": principal.role,
        "stores": list(principal.store_ids),
        "area": principal.area_id,
        "iat": int(now),
        "iat_ms": int(now * 1000),  # revocation compares in milliseconds
        "exp": int(now + ttl),
        "iss": ISSUER,
    }
    if principal.area_store_ids:
        claims["area_stores"] = list(principal.area_store_ids)
    if principal.session_id:
        claims["sid"] = principal.session_id
    return jwt.encode(claims, secret, algorithm="HS256")


def read_token(token: str, *, secret: str) -> Principal:
    """The staff member a token names: `TokenError` when it is expired, from another issuer or
    deployment (another secret), or malformed."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], issuer=ISSUER, options={"require": ["exp", "sub", "iss"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("The access token has expired; log in again.") from exc
    except jwt.PyJWTError as exc:
        raise TokenError("The access token is not valid.") from exc
    issued_ms = claims.get("iat_ms")
    if not isinstance(issued_ms, int):
        issued_ms = int(claims.get("iat") or 0) * 1000
    return Principal(
        staff_id=str(claims["sub"]),
        role=str(claims.get("role") or "staff"),
        store_ids=tuple(str(s) for s in claims.get("stores") or ()),
        area_id=claims.get("area"),
        area_store_ids=tuple(str(s) for s in claims.get("area_stores") or ()),
        issued_ms=issued_ms,
        session_id=str(claims["sid"]) if claims.get("sid") else None,
    )


def looks_like_token(value: str) -> bool:
    """Whether a bearer value is shaped like a JWT (a store key or the admin token is not)."""
    return value.startswith("eyJ") and value.count(".") == 2


# --- the caller of a route --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did something, as the audit log records it: `admin` (the admin token, with the name
    its caller declared in X-Voc-Actor, unverified, in `on_behalf_of`), `staff:<id>` (with the
    role), `key:<id>` (a store key), `service` or `system`."""

    name: str
    role: str | None = None
    on_behalf_of: str | None = None


SYSTEM = Actor("system")


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller of a route: the admin token (`principal` None) or a staff member."""

    principal: Principal | None
    on_behalf_of: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.principal is None

    @property
    def role(self) -> str:
        return "admin" if self.principal is None else self.principal.role

    @property
    def actor(self) -> Actor:
        if self.principal is None:
            return Actor("admin", on_behalf_of=self.on_behalf_of)
        return Actor(f"staff:{self.principal.staff_id}", role=self.principal.role)

    @property
    def scope(self) -> tuple[str, ...] | None:
        """The stores the caller reads; None for every store."""
        return None if self.principal is None else self.principal.scope

    def may(self, permission: Permission) -> bool:
        return self.principal is None or permission in self.principal.permissions

    def require(self, permission: Permission) -> None:
        if not self.may(permission):
            roles = ", ".join(r for r, granted in ROLE_PERMISSIONS.items() if permission in granted)
            raise Forbidden(
                f"This needs the '{permission}' permission ({roles} and the admin token have it);"
                f" a {self.role} does not."
            )

    def check_store(self, store_id: str | None, *, field: str = "query.store_id") -> None:
        """403 when the caller asks for a store outside their scope (never an empty answer)."""
        scope = self.scope
        if store_id and scope is not None and store_id not in scope:
            raise Forbidden(
                f"Store '{store_id}' is outside what you may see.",
                errors=[FieldError(field, "outside your stores")],
            )

    def check_area(self, area_id: str | None, *, field: str = "query.area_id") -> None:
        """403 unless the caller reads every store or the area is their own (an area manager)."""
        if not area_id or self.scope is None:
            return
        principal = self.principal
        if principal is not None and principal.role == "area_manager" and principal.area_id == area_id:
            return
        raise Forbidden(
            f"Area '{area_id}' is outside what you may see.", errors=[FieldError(field, "outside your area")]
        )


# --- revocation -------------------------------------------------------------------------------


def define_revocations_table(metadata: MetaData) -> Table:
    """The latest revocation per staff member: tokens issued at or before `revoked_before_ms`
    are refused. Attached to a service's own metadata (every service has one)."""
    return Table(
        "staff_revocations",
        metadata,
        Column("staff_id", String(64), primary_key=True),
        Column("revoked_before_ms", BigInteger, nullable=False),
        Column("reason", String(32), nullable=False),
        Column("recorded_at", Float, nullable=False),
    )


def create_revocations_table(op: Operations) -> None:
    """The migration step that adds `staff_revocations` (actions 0003, feedback 0005, notify 0012,
    profile 0006): the table as first shipped. Frozen: a later change is a new migration."""
    op.create_table(
        "staff_revocations",
        sa.Column("staff_id", sa.String(length=64), nullable=False),
        sa.Column("revoked_before_ms", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("recorded_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("staff_id"),
    )


class Revocations:
    """The revocation list of one process: the table, and a copy in memory checked on every
    verification (no database read per request). Another replica's write reaches this copy by
    `refresh` (every `poll_seconds`); this process's own writes at once."""

    def __init__(self, database: Database, table: Table, *, poll_seconds: float = 5.0) -> None:
        self.database = database
        self.table = table
        self.poll_seconds = poll_seconds
        self._before: dict[str, int] = {}

    def revoked(self, principal: Principal) -> bool:
        return principal.issued_ms <= self._before.get(principal.staff_id, -1)

    def note(self, staff_id: str, revoked_before_ms: int) -> None:
        if revoked_before_ms > self._before.get(staff_id, -1):
            self._before[staff_id] = revoked_before_ms

    async def refresh(self) -> None:
        async with self.database.session() as session:
            rows = (
                await session.execute(select(self.table.c.staff_id, self.table.c.revoked_before_ms))
            ).all()
        for staff_id, before in rows:
            self.note(staff_id, int(before))

    async def record(self, session: Any, *, staff_id: str, revoked_before_ms: int, reason: str) -> None:
        """Keep the later of the stored and the new revocation, in the caller's transaction
        (note it in memory once that committed)."""
        dialect = (await session.connection()).dialect.name
        row = {
            "staff_id": staff_id,
            "revoked_before_ms": revoked_before_ms,
            "reason": reason[:32],
            "recorded_at": time.time(),
        }
        await session.execute(insert_ignore(dialect, self.table), row)
        await session.execute(
            update(self.table)
            .where(self.table.c.staff_id == staff_id, self.table.c.revoked_before_ms < revoked_before_ms)
            .values(revoked_before_ms=revoked_before_ms, reason=row["reason"], recorded_at=row["recorded_at"])
        )

    async def run(self) -> None:
        """Refresh the copy in memory every `poll_seconds` (the bound on how long another
        replica's revocation takes to reach this one, beside the bus's own delay)."""
        await every(self.poll_seconds, self.refresh, log=log, failed="revocation refresh failed; retrying")

    def consumer(self, durable: str) -> ConsumerSpec:
        """The durable consumer of `voc.staff.sessions_revoked` that keeps this service's table
        (idempotent: the later revocation wins)."""

        async def handle(msg: Msg) -> None:
            event = events_pb2.StaffSessionsRevoked.FromString(msg.data)
            if not event.staff_id:
                return
            async with self.database.transaction() as session:
                await self.record(
                    session,
                    staff_id=event.staff_id,
                    revoked_before_ms=event.revoked_before_ms,
                    reason=event.reason or "revoked",
                )
            self.note(event.staff_id, event.revoked_before_ms)

        return ConsumerSpec(durable=durable, subjects=[SUBJECT_REVOKED], handler=handle)


class Identity:
    """How a service tells who calls it: the admin token, or a staff token verified with the
    shared secret and checked against the revocation list. Set as `app.state.identity`."""

    def __init__(self, *, secret: str, admin_token: str, revocations: Revocations) -> None:
        self.secret = secret
        self.admin_token = admin_token
        self.revocations = revocations

    def verify(self, token: str) -> Principal:
        """The staff member a token names; `Unauthenticated` (401) when it is expired, signed
        by another deployment, malformed or revoked."""
        try:
            principal = read_token(token, secret=self.secret)
        except TokenError as exc:
            raise Unauthenticated(str(exc)) from exc
        if self.revocations.revoked(principal):
            raise Unauthenticated("The access token was revoked; log in again.")
        return principal

    def caller(self, token: str, *, declared: str | None = None) -> Caller | None:
        """The admin token or a staff token as a `Caller`; None for anything else (a store
        key is the service's own business). A staff token that fails verification is 401."""
        if same_secret(token, self.admin_token):
            return Caller(None, on_behalf_of=declared)
        if looks_like_token(token):
            return Caller(self.verify(token))
        return None
