"""What `voc up` says at start about its configuration: the `VOC_*` variables of the caller's
environment that change a default (secrets masked), and those no service or tool reads (a typo
would otherwise be silently ignored)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic_core import PydanticUndefined

from voc_platform.settings import ServiceSettings, variable_of

SERVICES = ("feedback", "profile", "actions", "notify")
#: Read by the `voc` tool or the test suite, not by a service's settings.
TOOL_VARIABLES = frozenset(
    {
        "VOC_DATA_DIR",  # also the services'; `voc up` prints it on its first line
        "VOC_NATS_PORT",
        "VOC_DEMO_PHONE_PORT",
        "VOC_DEMO_INBOX_PORT",
        "VOC_FEEDBACK_URL",
        "VOC_PROFILE_URL",
        "VOC_ACTIONS_URL",
        "VOC_NOTIFY_URL",
        "VOC_TEST_DATABASE",
        "VOC_TEST_POSTGRES_URL",
        "VOC_SERVICE",  # the image's entrypoint
        "VOC_VAPID_KEY_FILE",
        "VOC_FREE_PORT_RANGE",  # the suite's and the bench's port picker
        "VOC_TEST_ALL",
        "VOC_EVAL_CORRECTIONS",  # `make eval`
        "VOC_FUZZ_EXAMPLES",
    }
)

SECRET_MARKERS = ("TOKEN", "SECRET", "PASSWORD", "SEED", "CREDS")


@dataclass(frozen=True)
class Variable:
    name: str
    services: tuple[str, ...]
    default: Any


def known_variables() -> dict[str, Variable]:
    """Every variable the four services' settings classes read, with its default."""
    found: dict[str, tuple[list[str], Any]] = {}
    for service in SERVICES:
        cls: type[ServiceSettings] = importlib.import_module(f"voc_{service}.settings").Settings
        for field_name, info in cls.model_fields.items():
            variable = variable_of(cls, field_name).upper()
            entry = found.setdefault(variable, ([], info.default))
            entry[0].append(service)
    return {name: Variable(name, tuple(services), default) for name, (services, default) in found.items()}


def is_secret(name: str) -> bool:
    # A lifetime or a count of a secret (VOC_TOKEN_TTL_SECONDS) is not one: shown, so it can be checked.
    if name.endswith(("_SECONDS", "_DAYS", "_TTL", "_MAX_FAILURES")):
        return False
    return any(marker in name for marker in SECRET_MARKERS)


def shown(name: str, value: str) -> str:
    """The value as printed: secrets masked, a URL (database, SMTP, gateway) without its password."""
    if value == "":
        return "(empty)"
    if is_secret(name):
        return "****"
    if name.endswith("_URL"):
        try:
            parts = urlsplit(value)
            if parts.password is not None:
                host = parts.netloc.rsplit("@", 1)[1]
                return urlunsplit(parts._replace(netloc=f"{parts.username}:****@{host}"))
        except ValueError:
            return "****"
    return value


def _is_default(value: str, default: Any) -> bool:
    if default is PydanticUndefined or default is None:
        return False
    if isinstance(default, bool):
        return value.lower() in (("1", "true", "yes", "on") if default else ("0", "false", "no", "off"))
    try:
        return bool(type(default)(value) == default)
    except (TypeError, ValueError):
        return False


def report(environ: Mapping[str, str], *, defaults: Mapping[str, str] | None = None) -> list[str]:
    """The lines `voc up` prints: one per VOC_* variable set to something other than its default,
    which is `defaults`' value where `voc up` has its own (text logs, the console's origin, the
    data dir's generated secrets), the services' elsewhere."""
    own = defaults or {}
    known = known_variables()
    changed: list[str] = []
    unknown: list[str] = []
    for name in sorted(n for n in environ if n.startswith("VOC_")):
        value = environ[name]
        if name in TOOL_VARIABLES:
            if name != "VOC_DATA_DIR" and not name.startswith("VOC_TEST_"):
                changed.append(f"    {name}={shown(name, value)}   (voc)")
            continue
        variable = known.get(name)
        if variable is None:
            unknown.append(name)
            continue
        if name.endswith("_GRPC_TARGET"):
            # Ports are voc up's own settings (used as given); the targets follow from them.
            changed.append(
                f"    {name}={shown(name, value)}   (ignored: voc up points each service at its own)"
            )
            continue
        if value == own[name] if name in own else _is_default(value, variable.default):
            continue
        who = "all services" if len(variable.services) == len(SERVICES) else ", ".join(variable.services)
        changed.append(f"    {name}={shown(name, value)}   ({who})")
    lines = (
        ["[voc] settings from your environment (everything else is the default):", *changed]
        if changed
        else ["[voc] settings: the defaults (VOC_* variables change them, docs/ARCHITECTURE.md)"]
    )
    lines += [f"[voc] warning: {name} is read by no service (a typo?); ignored" for name in unknown]
    return lines


def follow_up_line(environ: Mapping[str, str]) -> str:
    """How follow-up links reach customers, said once at start: the channels configured, or
    that none is (the case timelines then say "follow-up not sent: no channel configured")."""
    channels = [
        f"{what} ({shown(name, environ[name])})"
        for what, name in (("e-mail", "VOC_SMTP_URL"), ("SMS", "VOC_SMS_GATEWAY_URL"))
        if environ.get(name)
    ]
    if not channels:
        return (
            "[voc] follow-up not sent: no channel configured "
            "(VOC_SMTP_URL or VOC_SMS_GATEWAY_URL; `voc demo-inbox` is a local mailbox, README)"
        )
    reports = (
        "; delivery reports (bounces, the gateway's) taken at notify's /v1/follow-ups/delivery-reports"
        if environ.get("VOC_DELIVERY_REPORT_TOKEN")
        else ""
    )
    return "[voc] follow-up links go to customers by " + " and ".join(channels) + reports
