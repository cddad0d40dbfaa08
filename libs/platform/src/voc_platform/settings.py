"""Settings shared by every service, read from the environment (names as in DESIGN §5).

Each service subclasses `ServiceSettings` and adds its own ports and database URL with explicit
`VOC_<SERVICE>_*` aliases, so the environment contract is greppable in one place per service.

Production (`VOC_ENV=production`, what the image and the manifests set) is fail-closed: every
secret must be set, and none may be a built-in development value, a placeholder from deploy/ or
the docs, shorter than 32 characters or too regular to be random (`secret_problem`, the one home
of that rule). `load_settings` turns a refusal into one line naming the variable.
"""

from __future__ import annotations

import ipaddress
import itertools
import math
import re
import ssl
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, ClassVar, Literal, TypeVar
from urllib.parse import urlsplit

import nkeys
from pydantic import AfterValidator, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from voc_platform.bus import NatsSecurity
from voc_platform.grpc import GrpcTls
from voc_platform.records import copy_fields

DEV_ADMIN_TOKEN = "dev-admin-token"  # noqa: S105 - the refused-outside-development default
DEV_INTERNAL_TOKEN = "dev-internal-token"  # noqa: S105
DEV_JWT_SECRET = "dev-jwt-secret-change-me-in-production"  # noqa: S105
DEV_SECRETS = frozenset({DEV_ADMIN_TOKEN, DEV_INTERNAL_TOKEN, DEV_JWT_SECRET})

#: Fragments of the example values shipped in deploy/ and the docs (`replace-with-…`,
#: `change-me…`, `PASSWORD`, …): a value containing one was copied, not generated.
PLACEHOLDER_MARKERS = (
    "replace-with",
    "replace_with",
    "change-me",
    "change_me",
    "changeme",
    "placeholder",
    "password",
    "example",
    "secret-here",
    "your-",
)
MIN_SECRET_CHARS = 32
#: At least this many bits by a per-character estimate (a random 32-character hex string has
#: ~94-128; a repeated or two-letter string far fewer) and this many distinct characters.
MIN_SECRET_BITS = 80
MIN_SECRET_DISTINCT = 8
HOW_TO_GENERATE = 'e.g. python3 -c "import secrets; print(secrets.token_urlsafe(32))"'


def _base_url(value: str | None) -> str | None:
    """A base URL that links people follow start with (`VOC_*_PUBLIC_URL`): http(s)://host[:port]
    and a path, or empty (unset). "not a url" would start every follow-up link and push link."""
    if not value:
        return value
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - raises for a port that is no number
    except ValueError:
        parts = parts._replace(scheme="")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"{value!r} is not a base URL (http(s)://host[:port][/path])")
    if parts.username is not None:
        raise ValueError("a base URL that links start with carries no user or password")
    return value


#: A `VOC_*_PUBLIC_URL`: where people's links point (follow-up pages, the staff app, the console).
BaseUrl = Annotated[str, AfterValidator(_base_url)]


def comma_list(value: str) -> list[str]:
    """A comma-separated setting's entries, blanks dropped (hosts, origins, networks, tiers)."""
    return [entry.strip() for entry in value.split(",") if entry.strip()]


def secret_problem(value: str, *, min_chars: int = MIN_SECRET_CHARS) -> str | None:
    """Why `value` cannot be a production secret, or None when it can."""
    if not value:
        return "is not set"
    if any(dev in value for dev in DEV_SECRETS):
        return "is a built-in development value"
    lowered = value.lower()
    marker = next((m for m in PLACEHOLDER_MARKERS if m in lowered), None)
    if marker is not None:
        return f"is an example placeholder (contains {marker!r})"
    if len(value) < min_chars:
        return f"is shorter than {min_chars} characters"
    counts = Counter(value)
    bits = -sum(n * math.log2(n / len(value)) for n in counts.values())
    if len(counts) < MIN_SECRET_DISTINCT or bits < MIN_SECRET_BITS:
        return "has too little entropy to be random"
    if _longest_sequence(value) >= MAX_SEQUENCE:
        return "holds a run of consecutive characters (abcdefg…), so it was not drawn at random"
    return None


#: A random secret's characters almost never run in sequence: 7 in a row (6 steps of ±1) come
#: about once in 600,000 random hex secrets of 64 characters (far less often in base64url);
#: "abcdefghijklmnopqrstuvwxyz012345" has all its entropy in distinct characters, none in order.
MAX_SEQUENCE = 7


def _longest_sequence(value: str) -> int:
    """The longest stretch of characters each one code point above (or each one below) the last."""
    longest = run = 1
    step = 0
    for before, after in itertools.pairwise(value):
        difference = ord(after) - ord(before)
        if difference in (1, -1) and difference == step:
            run += 1
        else:
            run = 2 if difference in (1, -1) else 1
        step = difference
        longest = max(longest, run)
    return longest


def url_password_problem(url: str) -> str | None:
    """Why the password inside a database URL is an example value, or None (a URL without a
    password, e.g. one using a client certificate or IAM, is fine)."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    if password is None:
        return None
    lowered = password.lower()
    if password in DEV_SECRETS or any(m in lowered for m in PLACEHOLDER_MARKERS):
        return "carries an example password"
    return None


def _unreadable(path: Path) -> bool:
    try:
        path.read_bytes()
    except OSError:
        return True
    return False


def _nkey_seed_problem(seed: bytes) -> str | None:
    try:
        nkeys.from_seed(bytearray(seed.strip()))
    except Exception:  # nkeys raises its own error types, and binascii's for a seed of junk
        return "not an nkey seed (SU…)"
    return None


def _creds_problem(text: bytes) -> str | None:
    # nats-py's reader looks for these markers, and loops forever without the JWT's.
    found = re.search(
        rb"BEGIN NATS USER JWT-+\s*\n\s*(\S+).*?BEGIN USER NKEY SEED-+\s*\n\s*(\S+)", text, re.S
    )
    if found is None:
        return "not a NATS .creds file (a user JWT and its nkey seed)"
    return _nkey_seed_problem(found.group(2))


def _key_pair_problem(cert: Path, key: Path) -> str | None:
    """Why `cert` and `key` are not a PEM certificate and its unencrypted private key, starting
    with the variable's last word (CERT or KEY), or None."""
    if b"-----BEGIN CERTIFICATE-----" not in cert.read_bytes():
        return f"CERT: no PEM certificate in {cert}"
    key_text = key.read_bytes()
    if b"PRIVATE KEY-----" not in key_text:
        return f"KEY: no PEM private key in {key}"
    if b"ENCRYPTED" in key_text:
        return f"KEY: {key} is encrypted; give the key unencrypted (a mounted Secret's file)"
    try:
        # An empty password: a key encrypted some other way is refused, never prompted for.
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(cert, key, password="")
    except ssl.SSLError as error:
        if error.reason == "KEY_VALUES_MISMATCH":
            return f"KEY: {key} is not the private key of {cert}"
        return f"CERT / _KEY: {cert} and {key} are not a certificate and its key ({error.reason or error})"
    return None


def credential_file_problems(settings: ServiceSettings) -> list[str]:
    """Why the NATS and gRPC credential files cannot serve, a line each naming the variable:
    missing or unreadable, or not what the variable holds (PEM certificates, a certificate and
    its private key, an nkey seed, a .creds file). Caught at start, these are one line; found
    at the first connection, a key that is not a key read "Failed to bind" (gRPC), and a .creds
    file without its JWT hung the NATS connect."""
    problems: list[str] = []
    missing = set()
    for name in ("nats_creds", "nats_nkey_seed", "nats_tls_ca", "nats_tls_cert", "nats_tls_key",
                 "grpc_tls_cert", "grpc_tls_key", "grpc_tls_ca"):  # fmt: skip
        path = getattr(settings, name)
        if path is not None and (not path.is_file() or _unreadable(path)):
            problems.append(f"VOC_{name.upper()}: no readable file at {path}")
            missing.add(name)
    for prefix in ("nats", "grpc"):
        ca, cert, key = (getattr(settings, f"{prefix}_tls_{part}") for part in ("ca", "cert", "key"))
        if ca is not None and f"{prefix}_tls_ca" not in missing:
            try:
                ssl.create_default_context(cafile=str(ca))
            except (ssl.SSLError, ValueError):
                problems.append(f"VOC_{prefix.upper()}_TLS_CA: no PEM certificate in {ca}")
        if cert is not None and key is not None and not {f"{prefix}_tls_cert", f"{prefix}_tls_key"} & missing:
            problem = _key_pair_problem(cert, key)
            if problem:
                problems.append(f"VOC_{prefix.upper()}_TLS_{problem}")
    if settings.nats_nkey_seed is not None and "nats_nkey_seed" not in missing:
        problem = _nkey_seed_problem(settings.nats_nkey_seed.read_bytes())
        if problem:
            problems.append(f"VOC_NATS_NKEY_SEED: {problem} in {settings.nats_nkey_seed}")
    if settings.nats_creds is not None and "nats_creds" not in missing:
        problem = _creds_problem(settings.nats_creds.read_bytes())
        if problem:
            problems.append(f"VOC_NATS_CREDS: {problem} in {settings.nats_creds}")
    return problems


NATS_URL_SCHEMES = ("nats://", "tls://", "ws://", "wss://")


def nats_url_problem(value: str) -> str | None:
    """Why VOC_NATS_URL (one server or a comma-separated list) is not a NATS URL, or None."""
    for server in (s.strip() for s in value.split(",")):
        if not server.startswith(NATS_URL_SCHEMES):
            return (
                "VOC_NATS_URL must start with nats://, tls://, ws:// or wss:// "
                f"(each server; got {server[:40]!r})"
            )
    return None


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOC_", extra="ignore", populate_by_name=True)

    service_name: ClassVar[str] = "service"
    default_http_port: ClassVar[int] = 8000
    default_grpc_port: ClassVar[int] = 9000

    environment: Literal["development", "test", "production"] = Field(
        "development", validation_alias="VOC_ENV"
    )
    data_dir: Path = Path("./var")
    nats_url: str = "nats://127.0.0.1:4230"
    # JetStream replicas of the event streams: 1 embedded, 3 on a cluster.
    nats_stream_replicas: int = Field(1, ge=1, le=5)
    admin_token: str = DEV_ADMIN_TOKEN
    internal_token: str = DEV_INTERNAL_TOKEN
    # The signing secret of staff access tokens: notify's login signs with it, every service
    # verifies with it (voc_platform.identity), so all four get the same value.
    jwt_secret: str = Field(DEV_JWT_SECRET, validation_alias="VOC_JWT_SECRET")
    # How often a replica reloads the staff revocation list its consumer (or another replica)
    # wrote: with the bus's delay, the bound on how long a revoked token still works.
    revocation_poll_seconds: float = Field(5.0, gt=0, le=30)
    # Audit entries older than this are deleted (hourly, voc_platform.audit.Audit.run_pruning).
    audit_retention_days: int = Field(365, ge=1, le=36500)
    # What customers and staff wrote is removed this long after it arrived (hourly,
    # voc_platform.retention): feedback items (feedback) and alerts (notify) keep their numbers
    # and steps. 0: kept until the customer is erased.
    retention_days: int = Field(1095, ge=0, le=36500)
    # Browser origins (comma-separated, e.g. the dashboard's `http://127.0.0.1:8010`) whose pages
    # may call this service's REST API with a staff token (CORS, voc_platform.http.install_cors):
    # the manager console served by feedback calls notify and actions directly. Empty: same
    # origin only. `make run` sets the dashboard's origin.
    console_origins: str = Field("", validation_alias="VOC_CONSOLE_ORIGINS")
    host: str = "127.0.0.1"
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    otlp_endpoint: str | None = Field(None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT")
    # One structured log line per HTTP request (method, route template, status, duration; no
    # path, query, headers or client address, so no tokens or customer data).
    access_log: bool = False
    # The reverse proxies in front (comma-separated IPs or CIDR networks, e.g. the ingress pods'
    # 10.0.0.0/8) whose X-Forwarded-For names the client: the address logins are limited by.
    # Empty (the default): the header is ignored, from loopback too, so no caller can pick the
    # address it is counted under; behind a proxy every client then shares the proxy's.
    trusted_proxies: str = Field("", validation_alias="VOC_TRUSTED_PROXIES")

    # gRPC targets of the other services (host:port).
    feedback_grpc_target: str = "127.0.0.1:9010"
    profile_grpc_target: str = "127.0.0.1:9020"
    actions_grpc_target: str = "127.0.0.1:9030"
    notify_grpc_target: str = "127.0.0.1:9040"
    grpc_timeout_seconds: float = Field(2.0, gt=0)

    # NATS credentials (one user per service, deploy/nats/accounts.conf) and TLS; gRPC TLS and
    # mTLS. All optional: `make run`'s embedded nats-server and loopback gRPC need none.
    nats_user: str | None = None
    nats_password: str | None = None
    nats_creds: Path | None = None  # a .creds file: user JWT + nkey seed
    nats_nkey_seed: Path | None = None  # a file holding the user's nkey seed
    nats_tls_ca: Path | None = None  # the CA that signed the NATS servers' certificates
    nats_tls_cert: Path | None = None  # a client certificate, when the servers verify clients
    nats_tls_key: Path | None = None
    grpc_tls_cert: Path | None = None  # this service's certificate: served, and shown as a client
    grpc_tls_key: Path | None = None
    grpc_tls_ca: Path | None = None  # the CA that signs every service's certificate
    grpc_tls_client_auth: Literal["none", "require"] = "none"  # require: mTLS

    http_port: int = 0
    grpc_port: int = 0
    database_url: str | None = None
    # SQLite group commit: under load a flush waits this long for more writes (0: never wait).
    sqlite_group_linger_ms: float = Field(3.0, ge=0, le=50)

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.strip().upper()
        level = {"WARN": "WARNING", "FATAL": "CRITICAL"}.get(level, level)  # logging's aliases
        if level not in ("NOTSET", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value:
            try:
                backend = make_url(value).get_backend_name()
            except ArgumentError:
                backend = ""
            if backend not in ("sqlite", "postgresql"):
                raise ValueError("a sqlite:///path or postgresql://user:password@host:port/database URL")
        return value

    @field_validator("nats_url")
    @classmethod
    def _nats_scheme(cls, value: str) -> str:
        if (problem := nats_url_problem(value)) is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _transport_security(self) -> ServiceSettings:
        problems = []
        if (self.nats_user is None) != (self.nats_password is None):
            problems.append("VOC_NATS_USER and VOC_NATS_PASSWORD go together")
        ways = [self.nats_user is not None, self.nats_creds is not None, self.nats_nkey_seed is not None]
        if sum(ways) > 1:
            problems.append("give one of VOC_NATS_USER/VOC_NATS_PASSWORD, VOC_NATS_CREDS, VOC_NATS_NKEY_SEED")
        for prefix in ("nats", "grpc"):
            if (getattr(self, f"{prefix}_tls_cert") is None) != (getattr(self, f"{prefix}_tls_key") is None):
                problems.append(f"VOC_{prefix.upper()}_TLS_CERT and VOC_{prefix.upper()}_TLS_KEY go together")
        if self.grpc_tls_client_auth == "require" and (
            self.grpc_tls_ca is None or self.grpc_tls_cert is None
        ):
            problems.append("VOC_GRPC_TLS_CLIENT_AUTH=require needs VOC_GRPC_TLS_CA and a certificate")
        problems += credential_file_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def nats_security(self) -> NatsSecurity:
        """The NATS credentials and TLS of this service (all empty on the embedded default)."""
        return copy_fields(NatsSecurity, self, source_prefix="nats_")

    def grpc_tls(self) -> GrpcTls | None:
        """gRPC TLS for this service's server and its clients, or None (plain, the default)."""
        if self.grpc_tls_cert is None and self.grpc_tls_ca is None:
            return None
        return GrpcTls(
            cert_file=self.grpc_tls_cert,
            key_file=self.grpc_tls_key,
            ca_file=self.grpc_tls_ca,
            require_client_auth=self.grpc_tls_client_auth == "require",
        )

    def production_secrets(self) -> list[tuple[str, str]]:
        """(variable, value) of every secret this service needs in production; a subclass adds
        its own (feedback's follow-up secret). Every service verifies staff tokens, so every one
        needs the JWT secret. A NATS password, when one is used, is held to the same rule."""
        found = [
            ("VOC_ADMIN_TOKEN", self.admin_token),
            ("VOC_INTERNAL_TOKEN", self.internal_token),
            ("VOC_JWT_SECRET", self.jwt_secret),
        ]
        if self.nats_password is not None:
            found.append(("VOC_NATS_PASSWORD", self.nats_password))
        return found

    def production_problems(self) -> list[str]:
        """What production refuses in these settings, one entry per variable."""
        held = self.production_secrets()
        problems = [
            f"{name} {problem}" for name, value in held if (problem := secret_problem(value)) is not None
        ]
        # One value in two roles makes each as strong as the most exposed holder: a service given
        # the internal token could then act as the admin or sign staff tokens.
        for i, (name, value) in enumerate(held):
            same = next((other for other, v in held[:i] if value and v == value), None)
            if same is not None:
                problems.append(f"{name} is the same value as {same}: each secret must be its own")
        if self.database_url and (problem := url_password_problem(self.database_url)) is not None:
            problems.append(f"VOC_{self.service_name.upper()}_DATABASE_URL {problem}")
        return problems

    @model_validator(mode="after")
    def _refuse_weak_secrets(self) -> ServiceSettings:
        if self.environment == "production":
            problems = self.production_problems()
            if problems:
                raise ValueError(
                    "; ".join(problems) + f" (production needs a random secret of {MIN_SECRET_CHARS}+"
                    f" characters in each, {HOW_TO_GENERATE})"
                )
        return self

    @property
    def console_origin_list(self) -> list[str]:
        """VOC_CONSOLE_ORIGINS as a list (blank entries dropped)."""
        return comma_list(self.console_origins)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks_only(cls, value: str) -> str:
        for entry in comma_list(value):
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"VOC_TRUSTED_PROXIES: {entry!r} is not an IP address or network; '*' is never allowed"
                ) from None
        return value

    @property
    def trusted_proxy_list(self) -> list[str]:
        """The networks as uvicorn reads them (it parses strictly: 10.0.0.1/8 would never match)."""
        return [str(ipaddress.ip_network(p, strict=False)) for p in comma_list(self.trusted_proxies)]

    @field_validator("console_origins")
    @classmethod
    def _origins_only(cls, value: str) -> str:
        for entry in (o.strip() for o in value.split(",")):
            parts = urlsplit(entry)
            if entry and (
                parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/")
            ):
                raise ValueError(
                    f"VOC_CONSOLE_ORIGINS: {entry!r} is not an origin (scheme://host[:port]);"
                    " '*' is never allowed"
                )
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / f'{self.service_name}.db').resolve()}"


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def variable_of(cls: type[ServiceSettings], name: str) -> str:
    """The environment variable a field (or an alias already) of `cls` is read from."""
    field = cls.model_fields.get(name)
    if field is None:
        return name
    alias = field.validation_alias
    return alias if isinstance(alias, str) else f"VOC_{name.upper()}"


def describe(exc: ValidationError, cls: type[ServiceSettings]) -> str:
    """A settings refusal as one line naming each variable (never echoing the value)."""
    parts = []
    for error in exc.errors():
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        loc = error.get("loc") or ()
        variable = variable_of(cls, str(loc[0])) if loc else ""
        # A message that names its variable itself is not prefixed with it again.
        parts.append(f"{variable}: {message}" if variable and not message.startswith(variable) else message)
    return "; ".join(parts)


#: The exit status of a process that refuses its configuration (sysexits' EX_CONFIG): a
#: supervisor (`voc up`) gives up on it instead of restarting it, since a restart cannot help.
CONFIG_EXIT_STATUS = 78


def load_settings(cls: type[SettingsT]) -> SettingsT:
    """`cls()` from the environment; a bad value stops the process with one line on stderr
    that names the variable and what it accepts (exit status 78), rather than a traceback."""
    try:
        return cls()
    except ValidationError as exc:
        print(f"voc-{cls.service_name}: refusing to start: {describe(exc, cls)}", file=sys.stderr, flush=True)
        raise SystemExit(CONFIG_EXIT_STATUS) from None
    except SettingsError as exc:  # a value the source could not parse (a complex field's JSON)
        print(f"voc-{cls.service_name}: refusing to start: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(CONFIG_EXIT_STATUS) from None
