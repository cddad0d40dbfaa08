"""Domain errors: what went wrong, in the domain's words. Domain code raises these and never an
HTTP or gRPC type; the edges translate them, REST to problem+json (`voc_platform.http`) and gRPC
to a status code (`voc_platform.grpc`), each from the one table on the class."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import grpc


@dataclass(frozen=True, slots=True)
class FieldError:
    """One offending field of a request, by its path as the caller sent it (`body.ratings.csat`)."""

    field: str
    message: str


class DomainError(Exception):
    """Base of every error a domain function raises on purpose."""

    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"
    grpc_code: ClassVar[grpc.StatusCode] = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        errors: Sequence[FieldError] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors: tuple[FieldError, ...] = (
            (FieldError(field, detail), *errors) if field is not None else tuple(errors)
        )
        self.headers = dict(headers or {})

    def problem_errors(self) -> list[dict[str, Any]]:
        """The `errors` member of the problem+json answer: one per offending field (a subclass
        may say more of each)."""
        return [{"field": e.field, "message": e.message} for e in self.errors]

    def problem_members(self) -> dict[str, Any]:
        """The answer's extension members besides `errors` (none unless a subclass has some)."""
        return {}


class BadRequest(DomainError):
    """The request is unreadable as a whole (a cursor this service did not issue, say)."""

    status, title, grpc_code = 400, "Bad request", grpc.StatusCode.INVALID_ARGUMENT


class Invalid(DomainError):
    """Well-formed, but a value breaks a rule; names the field when there is one."""

    status, title, grpc_code = 422, "Invalid request", grpc.StatusCode.INVALID_ARGUMENT


class Unauthenticated(DomainError):
    status, title, grpc_code = 401, "Unauthorized", grpc.StatusCode.UNAUTHENTICATED

    def __init__(self, detail: str = "Send 'Authorization: Bearer <token>'.") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(DomainError):
    status, title, grpc_code = 403, "Forbidden", grpc.StatusCode.PERMISSION_DENIED


class NotFound(DomainError, LookupError):
    status, title, grpc_code = 404, "Not found", grpc.StatusCode.NOT_FOUND


class Conflict(DomainError):
    status, title, grpc_code = 409, "Conflict", grpc.StatusCode.FAILED_PRECONDITION


class Gone(DomainError, LookupError):
    status, title, grpc_code = 410, "Gone", grpc.StatusCode.NOT_FOUND


class Unsupported(DomainError):
    status, title, grpc_code = 415, "Unsupported media type", grpc.StatusCode.INVALID_ARGUMENT


class Locked(DomainError):
    status, title, grpc_code = 423, "Locked", grpc.StatusCode.FAILED_PRECONDITION


class RateLimited(DomainError):
    """Too many requests; `retry_after` seconds until one would pass."""

    status, title, grpc_code = 429, "Too many requests", grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, detail: str, *, retry_after: float) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, math.ceil(retry_after)))})
        self.retry_after = retry_after


class Unavailable(DomainError):
    status, title, grpc_code = 503, "Service unavailable", grpc.StatusCode.UNAVAILABLE
