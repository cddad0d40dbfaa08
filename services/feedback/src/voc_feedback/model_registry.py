"""The classifier model registry: versions uploaded as candidates, promoted through the gate,
rolled back, and served by every replica without a restart (docs/CLASSIFIER.md, "Learning from
corrections").

Like the playbook library (actions' `publishing.py`, `live.py`): a promotion commits the new
state with its event (`voc.feedback.classifier_promoted`, outbox) in one transaction and is
served at once on the replica that made it; the others reload on the event (a plain
subscription, fan-out) and, should they miss it, on the periodic check (`Reloader`).
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import time
import zipfile
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from voc.events.v1 import events_pb2
from voc_feedback.classification.gate import GATE_METRICS, regressions
from voc_feedback.classification.model import (
    BundleInvalid,
    Model,
    bundle_entry,
    bundle_json,
    load_model,
    packaged_model,
    read_bundle,
    serve,
)
from voc_feedback.models import ClassifierModel, outbox_table
from voc_platform.audit import Audit
from voc_platform.db import Database
from voc_platform.errors import Conflict, DomainError, FieldError, Invalid, NotFound
from voc_platform.identity import Actor
from voc_platform.outbox import add_event
from voc_platform.periodic import every

log = logging.getLogger(__name__)

SUBJECT_PROMOTED = "voc.feedback.classifier_promoted"
#: pg_advisory_xact_lock key serialising promotions and rollbacks across replicas ("voc-clf").
REGISTRY_LOCK_KEY = 0x766F63_636C66
MAX_BUNDLE_BYTES = 16 * 1024 * 1024  # the upload (the packaged model's bundle: 2.4 MB)
GATE_ENTRY = "gate.json"  # the gate's figures, inside the uploaded bundle (`voc classifier train`)


class BundleRejected(Invalid):
    """422: the uploaded bytes are not a model this service can serve; nothing was stored."""


class BundleTooLarge(DomainError):
    status, title = 413, "Payload too large"


class GateRefused(Conflict):
    """409: the candidate falls below the active version on a gate metric; nothing changed."""

    def __init__(self, detail: str, *, found: list[dict[str, Any]], baseline: str) -> None:
        super().__init__(
            detail,
            errors=[
                FieldError(f"metrics.{r['metric']}", f"{r['candidate']} < {r['baseline']} - {r['tolerance']}")
                for r in found
            ],
        )
        self.found, self.baseline = found, baseline

    def problem_members(self) -> dict[str, Any]:
        return {"regressions": self.found, "baseline_version": self.baseline}


@dataclass(frozen=True, slots=True)
class Active:
    """What the registry says every replica serves: a version and when it became active, or
    the packaged model (`version` None)."""

    version: str | None
    promoted_at: float | None


class LiveClassifier:
    """The registry state this replica serves; `serve` swaps the model `classify` reads."""

    def __init__(self) -> None:
        self.active = Active(None, None)
        self.lock = asyncio.Lock()  # one reload at a time in this process

    @property
    def version(self) -> str:
        return load_model().version

    def serve(self, active: Active, model: Model | None) -> None:
        serve(model)
        self.active = active


def builtin_version() -> str:
    return packaged_model().version


# ------------------------------------------------------------------------------------ reading


async def list_models(session: AsyncSession) -> list[ClassifierModel]:
    """Every registered version, newest first (bundles not loaded)."""
    rows = await session.scalars(
        select(ClassifierModel).order_by(ClassifierModel.created_at.desc(), ClassifierModel.version)
    )
    return list(rows)


async def get_model(session: AsyncSession, *, version: str, with_bundle: bool = False) -> ClassifierModel:
    """One version (404 when unknown), its bundle loaded if asked for."""
    options = [undefer(ClassifierModel.bundle)] if with_bundle else []
    row = await session.get(ClassifierModel, version, options=options)
    if row is None:
        raise NotFound(f"No classifier model version '{version}'.")
    return row


async def active_state(session: AsyncSession) -> Active:
    row = (
        await session.execute(
            select(ClassifierModel.version, ClassifierModel.promoted_at).where(
                ClassifierModel.status == "active"
            )
        )
    ).first()
    return Active(row[0], row[1]) if row else Active(None, None)


# ------------------------------------------------------------------------------------ upload


def _gate_figures(blob: bytes) -> dict[str, Any]:
    """The gate's figures in the bundle (`gate.json`), checked; {} when it has none."""
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        if GATE_ENTRY not in archive.namelist():
            return {}
        raw = bundle_json(GATE_ENTRY, bundle_entry(archive, GATE_ENTRY))
    if not isinstance(raw, dict) or not isinstance(raw.get("baseline_version"), str):
        raise BundleInvalid("gate.json needs 'baseline_version', 'candidate' and 'baseline'")
    figures: dict[str, Any] = {"baseline_version": raw["baseline_version"][:64]}
    for side in ("candidate", "baseline"):
        values = raw.get(side)
        if not isinstance(values, dict) or set(values) != set(GATE_METRICS):
            raise BundleInvalid(f"gate.json '{side}' must give exactly {sorted(GATE_METRICS)}")
        for metric, value in values.items():
            # The range first: math.isfinite of an integer too large for a float (10**400) raises.
            if not isinstance(value, int | float) or not 0 <= value <= 1 or not math.isfinite(value):
                raise BundleInvalid(f"gate.json {side}.{metric} must be a number in [0, 1]")
        figures[side] = {m: float(values[m]) for m in GATE_METRICS}
    return figures


async def upload(*, database: Database, blob: bytes, actor: Actor, audit: Audit) -> ClassifierModel:
    """Check a bundle (`read_bundle`, in a thread: ~0.1 s) and store it as a candidate; 422 for
    a bundle that cannot be served, 409 when the version is registered already."""
    if len(blob) > MAX_BUNDLE_BYTES:
        raise BundleTooLarge(f"The bundle exceeds {MAX_BUNDLE_BYTES} bytes; nothing was stored.")
    try:
        model, meta = await asyncio.to_thread(read_bundle, blob)
        figures = _gate_figures(blob)
    except ValueError as exc:  # BundleInvalid is one
        raise BundleRejected(f"Not a usable model bundle: {exc}"[:500], field="body") from exc
    if model.version == builtin_version():
        raise Conflict(f"Version '{model.version}' is the built-in model; roll back to it instead.")
    sources = meta.get("training_rows")
    try:
        return await _store(
            database, model=model, blob=blob, figures=figures, sources=sources, actor=actor, audit=audit
        )
    except IntegrityError as exc:  # the same bundle uploaded twice at once
        raise Conflict(f"Version '{model.version}' is registered already.") from exc


async def _store(
    database: Database,
    *,
    model: Model,
    blob: bytes,
    figures: dict[str, Any],
    sources: Any,
    actor: Actor,
    audit: Audit,
) -> ClassifierModel:
    rows = sum(v for v in sources.values() if isinstance(v, int)) if isinstance(sources, dict) else 0
    async with database.transaction() as session:
        if await session.get(ClassifierModel, model.version) is not None:
            raise Conflict(f"Version '{model.version}' is registered already.")
        row = ClassifierModel(
            version=model.version,
            created_at=time.time(),
            created_by=actor.name[:64],
            status="candidate",
            metrics={"gate": figures, "training_rows": sources if isinstance(sources, dict) else {}},
            training_rows=rows,
            bundle=blob,
            promoted_at=None,
        )
        session.add(row)
        await audit.record(
            session,
            actor=actor,
            action="classifier.upload",
            target=f"classifier_model:{model.version}",
            detail={"training_rows": rows, "bytes": len(blob)},
        )
    return row


# ------------------------------------------------------------------------ promote / roll back


async def _lock(session: AsyncSession) -> None:
    """Serialise promotions and rollbacks across replicas for the rest of this transaction."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": REGISTRY_LOCK_KEY})
    else:
        # SQLite: a write (even of no rows) takes the database's write lock before the reads.
        await session.execute(
            update(ClassifierModel).where(ClassifierModel.version == "").values(status="candidate")
        )


async def _activate(
    session: AsyncSession,
    target: ClassifierModel | None,
    previous: str | None,
    audit: Audit,
    actor: Actor,
    action: str,
    detail: dict[str, Any],
) -> Active:
    """Retire the active row, make `target` active (None: the packaged model), add the event and
    audit the change (`action` by `actor`): every change of the active model goes through here."""
    now = time.time()
    await session.execute(
        update(ClassifierModel).where(ClassifierModel.status == "active").values(status="retired")
    )
    await session.flush()
    if target is not None:
        target.status, target.promoted_at = "active", now
    await session.flush()
    version = target.version if target is not None else builtin_version()
    await add_event(
        session,
        outbox_table,
        subject=SUBJECT_PROMOTED,
        message=events_pb2.ClassifierModelPromoted(
            version=version, previous_version=previous or builtin_version(), promoted_at_ms=int(now * 1000)
        ),
        event_id=f"classifier:{version}:{int(now * 1000)}",
    )
    await audit.record(
        session, actor=actor, action=action, target=f"classifier_model:{version}", detail=detail
    )
    return Active(target.version, now) if target is not None else Active(None, None)


async def _serve(live: LiveClassifier, active: Active, bundle: bytes | None) -> None:
    """Serve the newly active model here at once: `bundle` read off the loop (None: the packaged
    model)."""
    model = (await asyncio.to_thread(read_bundle, bundle))[0] if bundle is not None else None
    async with live.lock:
        live.serve(active, model)


async def promote(
    *, database: Database, live: LiveClassifier, version: str, actor: Actor, audit: Audit
) -> tuple[ClassifierModel, str]:
    """Make candidate `version` the active one if its gate figures pass: they must have been
    scored against the version active now, and fall on no gate metric by more than its
    tolerance (`gate.TOLERANCE`; 409 naming each metric otherwise, nothing changes). Served here
    at once, everywhere soon."""
    async with database.transaction() as session:
        await _lock(session)
        row = await get_model(session, version=version, with_bundle=True)
        if row.status != "candidate":
            hint = " (roll back to it instead)" if row.status == "retired" else ""
            raise Conflict(f"Version '{version}' is {row.status}, not a candidate{hint}.")
        current = await active_state(session)
        baseline = current.version or builtin_version()
        gate = row.metrics.get("gate") or {}
        if not gate:
            raise Conflict(f"Version '{version}' has no gate figures; upload it with `voc classifier train`.")
        if gate["baseline_version"] != baseline:
            raise Conflict(
                f"Version '{version}' was gated against '{gate['baseline_version']}', but '{baseline}' is "
                "active now; run the gate again (`voc classifier train`)."
            )
        found = [r.to_dict() for r in regressions(gate["candidate"], gate["baseline"])]
        if found:
            names = ", ".join(f"{r['metric']} {r['candidate']} < {r['baseline']}" for r in found)
            raise GateRefused(
                f"Version '{version}' regresses against '{baseline}' beyond the gate's tolerance: {names}; "
                "not promoted.",
                found=found,
                baseline=baseline,
            )
        detail = {"previous": baseline, "gate": gate}
        active = await _activate(session, row, current.version, audit, actor, "classifier.promote", detail)
    await _serve(live, active, row.bundle)
    return row, baseline


async def rollback(
    *, database: Database, live: LiveClassifier, version: str, actor: Actor, audit: Audit
) -> tuple[str, str]:
    """Make an earlier active version (or the built-in model, by its version) active again, with
    no gate: it was active before. 404 for an unknown version, 409 for one never active or
    active now. Returns (now active, previously active)."""
    async with database.transaction() as session:
        await _lock(session)
        current = await active_state(session)
        previous = current.version or builtin_version()
        target: ClassifierModel | None = None
        if version != builtin_version():
            target = await get_model(session, version=version, with_bundle=True)
            if target.promoted_at is None:
                raise Conflict(f"Version '{version}' was never active; promote it (the gate applies).")
        if version == previous:
            raise Conflict(f"Version '{version}' is active already.")
        detail = {"previous": previous}
        active = await _activate(
            session, target, current.version, audit, actor, "classifier.rollback", detail
        )
    await _serve(live, active, target.bundle if target is not None else None)
    return version, previous


# ------------------------------------------------------------------------------------ serving


async def reload_if_changed(database: Database, live: LiveClassifier) -> bool:
    """Serve what the registry says is active when it is not what this replica serves. A bundle
    that no longer loads (it was checked on upload) leaves the served model as it was."""
    async with live.lock:
        async with database.session() as session:
            active = await active_state(session)
            if active == live.active:
                return False
            blob = None
            if active.version is not None:
                blob = await session.scalar(
                    select(ClassifierModel.bundle).where(ClassifierModel.version == active.version)
                )
        try:
            model = (await asyncio.to_thread(read_bundle, blob))[0] if blob is not None else None
        except BundleInvalid:
            log.exception("classifier %s does not load; still serving %s", active.version, live.version)
            return False
        live.serve(active, model)
    log.info("classifier now serving %s", live.version)
    return True


class Reloader:
    """The promotion event reaches every replica through a plain NATS subscription (fan-out);
    the periodic check (every `poll_seconds`) covers a replica that missed it."""

    subject: ClassVar[str] = SUBJECT_PROMOTED

    def __init__(self, database: Database, live: LiveClassifier, poll_seconds: float) -> None:
        self.database, self.live, self.poll_seconds = database, live, poll_seconds

    async def load(self) -> None:
        await reload_if_changed(self.database, self.live)

    async def on_promoted(self, _msg: Any) -> None:
        try:
            await reload_if_changed(self.database, self.live)
        except Exception:
            log.exception("classifier reload after promotion failed; the periodic check retries")

    async def periodic(self) -> None:
        await every(
            self.poll_seconds,
            lambda: reload_if_changed(self.database, self.live),
            log=log,
            failed="periodic classifier check failed",
        )
