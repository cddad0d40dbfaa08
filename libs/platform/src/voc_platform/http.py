"""FastAPI building blocks: RFC 9457 problem+json errors, a body-size limit, a server span per
request, security headers on every response, and who may call a route: `require(permission)`
(the admin token, or a staff token whose role has the permission; `voc_platform.identity`).

One module (~590 lines): each piece is small, and every service's `build_app` installs them
together in one order (`install`), which a reader checks here in one place."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from importlib.metadata import version as _installed_version
from typing import Annotated, Any, cast
from urllib.parse import urlsplit

import orjson
from fastapi import Depends, FastAPI, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from opentelemetry.trace import SpanKind
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voc_platform import metrics, telemetry
from voc_platform.asgi import ResponseStatus
from voc_platform.db import Database
from voc_platform.errors import DomainError, FieldError, Forbidden, Invalid, Unauthenticated
from voc_platform.identity import Caller, Identity, Permission

PROBLEM_JSON = "application/problem+json"
VERSION = _installed_version("voc-platform")  # the release, in every service's OpenAPI document
MAX_BODY_BYTES = 64 * 1024
# The bulk calls' bodies (a chain's store directory, a CRM batch of 1,000 customers, a playbook
# library): their documented item counts run to several hundred KiB.
BULK_BODY_BYTES = 4 * 1024 * 1024

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Invalid request",
    423: "Locked",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    type_: str | None = None,
    errors: Sequence[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
    **extra: Any,
) -> Response:
    title = title or _TITLES.get(status, "Error")
    body: dict[str, Any] = {
        "type": type_ or f"https://frontline-voc.dev/problems/{title.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = list(errors)
    body.update(extra)
    trace_id = telemetry.current_trace_id()
    if trace_id:
        body["trace_id"] = trace_id
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=headers)


def allowed_methods(request: Request) -> str:
    """Every method some route takes at this path: Starlette's 405 names only the first route
    whose path matched (`GET /v1/admin/api-keys` exists, and OPTIONS said "Allow: POST")."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))


def _json_body(request: Request) -> bool:
    """Whether the body was read as JSON: `application/json`, a `+json` type, or no Content-Type
    (FastAPI reads that as JSON too)."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media in ("", "application/json") or media.endswith("+json")


def _field_path(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    return ".".join(parts)


def install_problem_handlers(app: FastAPI) -> None:
    async def on_domain(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DomainError)
        return problem_response(
            exc.status,
            exc.detail,
            title=exc.title,
            errors=exc.problem_errors(),
            headers=exc.headers,
            instance=request.url.path,
            **exc.problem_members(),
        )

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if not _json_body(request) and any(tuple(e.get("loc", ()))[:1] == ("body",) for e in exc.errors()):
            # A form, text or no Content-Type where a JSON body is read (routes that take CSV or a
            # form read the body themselves): say so, rather than "Input should be a valid dictionary".
            return problem_response(
                415, "The body must be JSON (Content-Type: application/json).", instance=request.url.path
            )
        errors = []
        for err in exc.errors():
            loc = list(err.get("loc", ()))
            if err.get("type") == "json_invalid":
                return problem_response(400, "The body is not valid JSON.", instance=request.url.path)
            errors.append(
                {"field": _field_path(loc), "message": err.get("msg", "invalid"), "type": err.get("type", "")}
            )
        return problem_response(
            422, f"{len(errors)} field(s) are invalid.", errors=errors, instance=request.url.path
        )

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "")
        if exc.status_code == 400 and detail == _FASTAPI_BODY_ERROR:
            # FastAPI's words for a body its JSON parser raised on (bytes that are not UTF-8,
            # nesting too deep for it): ours for any body that is not JSON.
            detail = "The body is not valid JSON (UTF-8 text)."
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request)
        return problem_response(exc.status_code, detail, headers=headers, instance=request.url.path)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        return problem_response(
            500, "An unexpected error occurred; it has been logged.", instance=request.url.path
        )

    app.add_exception_handler(DomainError, on_domain)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


_FASTAPI_BODY_ERROR = "There was an error parsing the body"


class BodyLimitMiddleware:
    """What no route may take, refused with problem+json before the app reads it: a body over
    the limit (413, whether Content-Length announces it or it streams in chunks), and a NUL
    character (U+0000) in the path, the query or the body (422: PostgreSQL cannot store one,
    SQLite would; refused here, every service, either database, before any work). Exempt paths
    stream their bodies and enforce their own (larger) size limit; NULs are refused there too,
    except in the body of a `binary` path (an opaque upload stored as bytes, never as text).
    `bulk` paths take bodies up to `BULK_BODY_BYTES` from a caller that sends credentials."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int = MAX_BODY_BYTES,
        exempt: Iterable[str] = (),
        binary: Iterable[str] = (),
        bulk: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = frozenset(exempt)
        self.binary = frozenset(binary)
        self.bulk = frozenset(bulk)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope.get("path", ""):
            await nul_problem("path", scope)(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query:
            await nul_problem("query", scope)(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
                # Nothing here decompresses a request: a compressed body would be read as text
                # (and its bytes scanned for NULs); say what is wrong instead.
                await encoding_problem(value.decode("latin-1"), scope)(scope, receive, send)
                return
        path = scope.get("path")
        limit = None if path in self.exempt else self.max_bytes
        if path in self.bulk and any(name == b"authorization" for name, _ in scope.get("headers", [])):
            # Only a caller with credentials gets the larger limit: FastAPI parses a JSON body
            # before the route checks them, and an anonymous 4 MiB parse holds the loop ~0.3 s.
            limit = BULK_BODY_BYTES
        scan = scope.get("path") not in self.binary
        if limit is not None:
            for name, value in scope.get("headers", []):
                if name == b"content-length" and value.isdigit() and int(value) > limit:
                    await self._too_large(scope, limit)(scope, receive, send)
                    return
        received = 0
        tail = b""  # the end of the body so far: an escape may straddle two chunks
        refusal: Response | None = None
        started = False

        async def guarded_receive() -> Message:
            nonlocal received, tail, refusal
            message = await receive()
            if message["type"] == "http.request":
                body = message.get("body", b"")
                received += len(body)
                if limit is not None and received > limit:
                    refusal = self._too_large(scope, limit)
                    raise _BodyRefused
                if body and scan:
                    seen = tail + body
                    if b"\x00" in body or has_nul_escape(seen):
                        refusal = nul_problem("body", scope)
                        raise _BodyRefused
                    tail = seen[-_TAIL_BYTES:]
            return message

        async def guarded_send(message: Message) -> None:
            # Once the body was refused, the app's own answer is dropped: FastAPI's body parsing
            # turns any error while reading (ours included) into a 400.
            nonlocal started
            if refusal is not None and not started:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except Exception:
            if refusal is None:  # the guard's own refusal, however the app passed it on
                raise
        if refusal is not None and not started:
            await refusal(scope, receive, send)

    def _too_large(self, scope: Scope, limit: int) -> Response:
        return problem_response(413, f"The body exceeds {limit} bytes.", instance=scope.get("path"))


class _BodyRefused(Exception):
    pass


_NUL_ESCAPE = b"\\u0000"
_TAIL_BYTES = 32


def has_nul_escape(data: bytes) -> bool:
    """Whether JSON text holds the escape of U+0000 (a backslash-u-0000 whose backslash is not
    itself escaped: an odd run of backslashes before the u)."""
    at = data.find(_NUL_ESCAPE)
    while at >= 0:
        run = 1
        while at - run >= 0 and data[at - run] == 0x5C:
            run += 1
        if run % 2 == 1:
            return True
        at = data.find(_NUL_ESCAPE, at + 1)
    return False


def encoding_problem(encoding: str, scope: Scope) -> Response:
    """415 for a request body sent compressed (`Content-Encoding`)."""
    return problem_response(
        415,
        f"Content-Encoding '{encoding[:40]}' is not accepted: send the body uncompressed.",
        errors=[{"field": "header.content-encoding", "message": "not accepted"}],
        instance=scope.get("path"),
    )


def nul_problem(part: str, scope: Scope) -> Response:
    """422 for a NUL character in the request's `part` (path, query or body)."""
    return problem_response(
        422,
        "Text must not contain NUL characters (U+0000).",
        errors=[{"field": part, "message": "contains U+0000"}],
        instance=scope.get("path"),
    )


class TracingMiddleware:
    """A SERVER span per request, continuing the caller's traceparent when given."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        route = f"{scope['method']} {scope['path']}"
        status = ResponseStatus(send)
        with telemetry.span(
            route,
            kind=SpanKind.SERVER,
            parent=telemetry.extract(headers) if "traceparent" in headers else None,
            attributes={"http.request.method": scope["method"], "url.path": scope["path"]},
            service=self.service,
        ) as span:
            await self.app(scope, receive, status.send)
            span.set_attribute("http.response.status_code", status.code)


# Every page and asset is served by the service itself: scripts, styles, images, the manifest
# and the service worker come from 'self', nothing runs inline, nothing frames the app.
# `{connect}` is 'self' and, for the manager console, the other services' origins it calls.
_POLICY_TEMPLATE = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src {connect}; font-src 'self'; manifest-src 'self'; worker-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
CONTENT_SECURITY_POLICY = _POLICY_TEMPLATE.format(connect="'self'")


def content_security_policy(connect_sources: Iterable[str] = ()) -> str:
    """The strict policy, its connect-src widened to `connect_sources` (origins, e.g. the
    console's calls to notify and actions); nothing else is widened."""
    extra = sorted({origin_of(s) for s in connect_sources if s} - {""})
    return _POLICY_TEMPLATE.format(connect=" ".join(["'self'", *extra]))


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of a URL ("" when it has none): what CSP and CORS compare."""
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}".lower()


# FastAPI's interactive API docs load Swagger UI / ReDoc from a CDN and start them with an
# inline script; they render only the service's own OpenAPI document, never request data.
API_DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
API_DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src https://fonts.gstatic.com; img-src 'self' data: https:; connect-src 'self'; "
    "worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _header_list(policy: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-security-policy", policy.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
    ]


class SecurityHeadersMiddleware:
    """The security headers of every response, pages, assets and API answers alike: a strict
    Content-Security-Policy (`CONTENT_SECURITY_POLICY`; the API docs pages their own),
    `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`."""

    _DOCS = _header_list(API_DOCS_CONTENT_SECURITY_POLICY)

    def __init__(
        self, app: ASGIApp, connect_sources: Iterable[str] = (), connect_paths: Iterable[str] = ()
    ) -> None:
        self.app = app
        self._strict = _header_list(CONTENT_SECURITY_POLICY)
        self._widened = _header_list(content_security_policy(connect_sources))
        # Where the widened connect-src applies (path prefixes; none given: everywhere). A page
        # that calls no other service (the customer's survey) is not told their addresses.
        self._connect_paths = tuple(connect_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        if path in API_DOCS_PATHS:
            extra = self._DOCS
        elif not self._connect_paths or any(
            path == p or path.startswith(p + "/") for p in self._connect_paths
        ):
            extra = self._widened
        else:
            extra = self._strict

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


#: The body of every 4xx answer (RFC 9457 problem+json), as the OpenAPI documents state it.
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
        "trace_id": {"type": "string"},
    },
}
_PROBLEM_CONTENT = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def document_problems(app: FastAPI) -> None:
    """Make the app's OpenAPI document say what its errors are: every 4xx answer of every
    operation is problem+json (`PROBLEM_SCHEMA`), not FastAPI's `HTTPValidationError`, so
    clients and the schema fuzzer check answers against what is really sent."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = generate()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        schemas["Problem"] = PROBLEM_SCHEMA
        for path_item in document.get("paths", {}).values():
            for operation in path_item.values():
                responses = operation.setdefault("responses", {})
                for code, response in responses.items():
                    if code.startswith("4"):
                        response["content"] = _PROBLEM_CONTENT
                responses["4XX"] = {"description": "A problem (RFC 9457)", "content": _PROBLEM_CONTENT}
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


#: What a console in another origin may send (the bearer token, JSON or CSV bodies, an
#: idempotency key) and read back (a rate limit's wait, a created resource's place).
CORS_ALLOW_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key")
CORS_EXPOSE_HEADERS = ("Retry-After", "Location")
CORS_MAX_AGE_SECONDS = 600


#: What a console may call across origins: the APIs, never the pages. (CORS answers carry
#: `Vary: Origin`, and a service worker's cached app shell with that header no longer matches
#: the navigation that needs it offline.)
CORS_PATH_PREFIX = "/v1/"


class ApiCorsMiddleware:
    """Starlette's CORS middleware for the `/v1/` API only; pages and assets pass untouched."""

    def __init__(self, app: ASGIApp, *, origins: Sequence[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=list(origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=list(CORS_ALLOW_HEADERS),
            expose_headers=list(CORS_EXPOSE_HEADERS),
            allow_credentials=False,
            max_age=CORS_MAX_AGE_SECONDS,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith(CORS_PATH_PREFIX):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def install_cors(app: FastAPI, origins: Iterable[str]) -> None:
    """Let the browser pages of exactly `origins` (VOC_CONSOLE_ORIGINS: the manager console)
    call this API (`/v1/…`) with a bearer token: no cookies are involved (credentials stay off),
    any other origin gets no CORS headers and its preflight is refused. Nothing is installed for
    an empty list: same-origin only."""
    allowed = sorted({origin_of(o) for o in origins} - {""})
    if not allowed:
        return
    app.add_middleware(ApiCorsMiddleware, origins=allowed)


def create_app(
    *,
    title: str,
    service: str,
    version: str = VERSION,
    body_limit_exempt: Iterable[str] = (),
    binary_bodies: Iterable[str] = (),
    bulk_bodies: Iterable[str] = (),
    console_origins: Iterable[str] = (),
    connect_sources: Iterable[str] = (),
    connect_paths: Iterable[str] = (),
) -> FastAPI:
    """A service's app with the shared handlers and middleware: `console_origins` may call it
    from a browser (`install_cors`), `connect_sources` widen the connect-src of its pages under
    `connect_paths` (every page when none)."""
    # FastAPI's native telemetry would add a second server span, operation spans for dependency
    # resolution and serialization, and metrics to every request: a third of intake's framework
    # CPU under load. TracingMiddleware below is our one span per request.
    app = FastAPI(
        title=title,
        version=version,
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
        dependencies=[Depends(reject_undeclared_query)],
    )
    install_problem_handlers(app)
    document_problems(app)
    app.add_middleware(BodyLimitMiddleware, exempt=body_limit_exempt, binary=binary_bodies, bulk=bulk_bodies)
    app.add_middleware(
        SecurityHeadersMiddleware, connect_sources=tuple(connect_sources), connect_paths=tuple(connect_paths)
    )
    # Outside the security headers: a preflight is answered here, before any route.
    install_cors(app, console_origins)
    # Inside the span (an access-log line carries its trace id), outside the body limit (its
    # 413s are counted).
    app.state.http_metrics = options = metrics.HttpMetricsOptions()
    app.add_middleware(
        metrics.HttpMetricsMiddleware, templates=lambda: metrics.route_templates(app), options=options
    )
    app.add_middleware(TracingMiddleware, service=service)
    app.include_router(metrics.router)
    metrics.SERVICE_INFO.labels(service, version).set(1)
    return app


def upload_body(*media_types: str, description: str) -> dict[str, Any]:
    """`openapi_extra` for a route that reads its body itself (a streamed file): the document
    names the media types it takes, which FastAPI cannot see, so clients and fuzzers can reach it."""
    binary = {"type": "string", "format": "binary"}
    content = {media: {"schema": binary} for media in media_types}
    return {"requestBody": {"required": True, "description": description, "content": content}}


_bearer = HTTPBearer(auto_error=False)
_ACTOR_NAME = re.compile(r"^[\w.@+-]{1,64}$")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def _required_bearer(credentials: BearerDep) -> HTTPAuthorizationCredentials:
    bearer_token(credentials)  # 401 without one
    return cast(HTTPAuthorizationCredentials, credentials)


# A route that always needs a bearer token takes it as this dependency, so a request without one
# is 401 before its body or query is validated: an anonymous caller learns nothing of the route's
# validation (a body that is not JSON is still 400 first: it is parsed before any dependency).
# Whether the token is valid is checked later, where the route checks it.
RequiredBearerDep = Annotated[HTTPAuthorizationCredentials, Depends(_required_bearer)]


def bearer_token(credentials: HTTPAuthorizationCredentials | None) -> str:
    """The bearer token sent; 401 without one."""
    if credentials is None or not credentials.credentials:
        raise Unauthenticated()
    return credentials.credentials


def declared_actor(request: Request) -> str | None:
    """The name an admin-token caller says is behind it (X-Voc-Actor): recorded as such,
    beside `admin`, never as the actor."""
    name = request.headers.get("x-voc-actor", "")
    return name if _ACTOR_NAME.match(name) else None


async def current_caller(request: Request, credentials: BearerDep) -> Caller:
    """The admin token or a valid staff token (401 for none, an expired, foreign-signed or
    revoked token, or any other credential)."""
    token = bearer_token(credentials)
    identity: Identity = request.app.state.identity
    caller = identity.caller(token, declared=declared_actor(request))
    if caller is None:
        raise Unauthenticated("Send the admin token or a staff access token (POST /v1/auth/login at notify).")
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]
_GUARDS: dict[Permission, Callable[..., Awaitable[Caller]]] = {}


def require(permission: Permission) -> Callable[..., Awaitable[Caller]]:
    """The dependency of a route that needs `permission`: the caller (admin token, or a staff
    token whose role has it); 401 for no valid credential, 403 for a role without it. One
    function per permission, so FastAPI resolves it once per request."""
    guard = _GUARDS.get(permission)
    if guard is None:

        async def guard(caller: CallerDep) -> Caller:
            caller.require(permission)
            return caller

        guard.__name__ = f"require_{permission.value.replace('.', '_')}"
        guard.permission = permission  # type: ignore[attr-defined]
        _GUARDS[permission] = guard
    return guard


async def require_admin(caller: CallerDep) -> None:
    """The admin token or a cx_admin's staff token (the role with every permission); 401 without
    a valid credential, 403 for another role. A new route declares the permission it needs
    instead (`require`), so the role table says who may call it."""
    if not caller.is_admin and caller.role != "cx_admin":
        raise Forbidden("This call needs the admin token or a cx_admin login.")


def install_health_routes(app: FastAPI, *, extra_ready: Callable[[], bool] | None = None) -> None:
    """`/healthz` (the process answers) and `/readyz` (bus connected, service-specific checks)."""

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> Response:
        runtime = getattr(request.app.state, "runtime", None)
        ok = bool(runtime and runtime.ready()) and (extra_ready() if extra_ready else True)
        return Response(
            orjson.dumps({"ready": ok}), status_code=200 if ok else 503, media_type="application/json"
        )


def _declared_query(dependant: Dependant) -> frozenset[str]:
    """The query parameters a route declares, its dependencies' included (by alias)."""
    names = {param.alias for param in dependant.query_params}
    for dependency in dependant.dependencies:
        names |= _declared_query(dependency)
    return frozenset(names)


async def reject_undeclared_query(request: Request) -> None:
    """Every route of every service: 422 naming each query parameter the route does not take,
    so a typo (`stoer_id=`) never widens a filter or an export to the caller's whole scope.
    A call without credentials is left to the route: it answers its 401 first, and what it
    shows anyone (a page, a stream by ticket) has no filter to widen."""
    if not request.query_params or "authorization" not in request.headers:
        return
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    allowed = _QUERY_OF_ROUTE.get(id(route))
    if allowed is None:
        allowed = _QUERY_OF_ROUTE[id(route)] = _declared_query(route.dependant)
    reject_unknown_params(request, allowed)


#: Per route (by identity: routes compare by path and live as long as the app), what
#: `reject_undeclared_query` reads of it.
_QUERY_OF_ROUTE: dict[int, frozenset[str]] = {}


def reject_unknown_params(request: Request, allowed: Iterable[str]) -> None:
    """422 naming every query parameter the route does not take (a typo must not widen a filter)."""
    unknown = sorted(set(request.query_params) - set(allowed))
    if unknown:
        raise Invalid(
            f"Unknown query parameter(s): {', '.join(unknown)}.",
            errors=[FieldError(f"query.{name}", "unknown parameter") for name in unknown],
        )


#: A period's bounds as query parameters, read by `query_instant` (feedback's lists and analytics,
#: profile's outreach report): an ISO 8601 date or a date-time with an offset, never a number.
FromQuery = Annotated[str | None, Query(alias="from", max_length=40)]
ToQuery = Annotated[str | None, Query(alias="to", max_length=40)]


def query_instant(
    value: str, field: str, *, takes: str = "an ISO 8601 date or a date-time with an offset"
) -> float:
    """Epoch seconds of a query parameter holding an ISO 8601 date-time with an offset, or a
    date (midnight UTC); a date-time without an offset is refused (whose clock would it be?).
    `takes` says what the parameter accepts, in the 422's detail."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or (parsed.tzinfo is None and "T" in value):
        raise Invalid(
            f"'{field}' must be {takes}.",
            errors=[FieldError(f"query.{field}", "expected e.g. 2026-11-01 or 2026-11-01T09:00:00+09:00")],
        )
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def app_state(name: str) -> Callable[[Request], Awaitable[Any]]:
    """A dependency giving `app.state.<name>`, what the service's `build_app` put there. Declare
    it once per name (`XDep = Annotated[X, Depends(app_state("x"))]`): FastAPI resolves it once
    per request by identity. A coroutine, since FastAPI runs a plain function in its thread pool."""

    async def from_state(request: Request) -> Any:
        return getattr(request.app.state, name)

    return from_state


DatabaseDep = Annotated[Database, Depends(app_state("database"))]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A read session on the service's database (set as `app.state.database`)."""
    async with request.app.state.database.session() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
