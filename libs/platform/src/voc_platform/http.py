"""FastAPI building blocks: RFC 9457 problem+json errors, a body-size limit, a server span per
request, security headers on every response, and the admin-token dependency."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from importlib.metadata import version as _installed_version
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from opentelemetry.trace import SpanKind
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voc_platform import metrics, telemetry
from voc_platform.asgi import ResponseStatus
from voc_platform.constant_time import same_secret
from voc_platform.db import Database
from voc_platform.errors import DomainError, FieldError, Forbidden, Invalid, Unauthenticated

PROBLEM_JSON = "application/problem+json"
VERSION = _installed_version("voc-platform")  # the release, in every service's OpenAPI document
MAX_BODY_BYTES = 64 * 1024

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
        return problem_response(
            exc.status_code, detail, headers=dict(exc.headers or {}), instance=request.url.path
        )

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        return problem_response(
            500, "An unexpected error occurred; it has been logged.", instance=request.url.path
        )

    app.add_exception_handler(DomainError, on_domain)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


class BodyLimitMiddleware:
    """Refuse bodies over the limit with 413 before the app reads them (Content-Length or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES, exempt: Iterable[str] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Exempt paths stream their bodies and enforce their own (larger) limits.
        if scope["type"] != "http" or scope.get("path") in self.exempt:
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._reject(scope, receive, send)
                return
        received = 0
        too_large = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # Once the body ran over, the app's own answer is dropped: FastAPI's body parsing
            # turns any error while reading (ours included) into a 400.
            nonlocal started
            if too_large and not started:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not too_large:  # the limit's own refusal, however the app passed it on
                raise
        if too_large and not started:
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413, f"The body exceeds {self.max_bytes} bytes.", instance=scope.get("path")
        )
        await response(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


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
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; worker-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
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

    _APP = _header_list(CONTENT_SECURITY_POLICY)
    _DOCS = _header_list(API_DOCS_CONTENT_SECURITY_POLICY)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self._DOCS if scope.get("path") in API_DOCS_PATHS else self._APP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(
    *, title: str, service: str, version: str = VERSION, body_limit_exempt: Iterable[str] = ()
) -> FastAPI:
    # FastAPI's native telemetry would add a second server span, operation spans for dependency
    # resolution and serialization, and metrics to every request: a third of intake's framework
    # CPU under load. TracingMiddleware below is our one span per request.
    app = FastAPI(
        title=title,
        version=version,
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    install_problem_handlers(app)
    app.add_middleware(BodyLimitMiddleware, exempt=body_limit_exempt)
    app.add_middleware(SecurityHeadersMiddleware)
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


_bearer = HTTPBearer(auto_error=False)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def bearer_token(credentials: HTTPAuthorizationCredentials | None) -> str:
    """The bearer token sent; 401 without one."""
    if credentials is None or not credentials.credentials:
        raise Unauthenticated()
    return credentials.credentials


async def require_admin(request: Request, credentials: BearerDep) -> None:
    """The service's admin token (`app.state.settings.admin_token`, compared in constant time):
    401 without a token, 403 for another."""
    token = bearer_token(credentials)
    if not same_secret(token, request.app.state.settings.admin_token):
        raise Forbidden("This call needs the admin token.")


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


def reject_unknown_params(request: Request, allowed: Iterable[str]) -> None:
    """422 naming every query parameter the route does not take (a typo must not widen a filter)."""
    unknown = sorted(set(request.query_params) - set(allowed))
    if unknown:
        raise Invalid(
            f"Unknown query parameter(s): {', '.join(unknown)}.",
            errors=[FieldError(f"query.{name}", "unknown parameter") for name in unknown],
        )


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
