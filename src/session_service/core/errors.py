"""Domain error tree and its one translation into RFC 9457 problem+json.

Services raise `ServiceError` subclasses; nothing below the route layer builds HTTP responses.
Every error answer carries a stable `code` the frontend switches on and the `request_id`
that finds the request's log lines.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, ClassVar

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from session_service.audit.events import EventType
from session_service.core.db import UNAVAILABLE_ERRORS
from session_service.http.rejections import record_rejection
from session_service.ratelimit.limiter import RateLimited

log = structlog.get_logger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:session-service:problem:"


class ServiceError(Exception):
    """Base of every error the service answers on purpose."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal error"
    # True when the answer is an error but the work done so far is itself the outcome to
    # keep (a rejected upload stays rejected): the unit of work commits, then re-raises.
    keeps_changes: ClassVar[bool] = False

    def __init__(
        self,
        detail: str | None = None,
        *,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})


class InvalidInput(ServiceError):
    """The request was well-formed JSON but broke a rule of the service."""

    status_code = 422
    code = "validation_error"
    title = "Invalid input"


class Conflict(ServiceError):
    """The request clashes with the current state of a resource."""

    status_code = 409
    code = "conflict"
    title = "Conflict"


class DatabaseUnavailable(ServiceError):
    """The database could not be reached; retrying later may succeed."""

    status_code = 503
    code = "database_unavailable"
    title = "Database unavailable"


class NotReady(ServiceError):
    """A dependency the service needs is not reachable."""

    status_code = 503
    code = "not_ready"
    title = "Not ready"


def problem_body(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    request_id: str | None,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """Serialise one RFC 9457 problem document; extensions never override its members."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": request_id,
    }
    for name, value in (extra or {}).items():
        body.setdefault(name, value)
    return json.dumps(body, separators=(",", ":"), default=str).encode()


def problem_response(
    request: Request,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A problem+json response for the request being handled."""
    request_id = request.scope.get("state", {}).get("request_id")
    content = problem_body(
        status=status, code=code, title=title, detail=detail, request_id=request_id, extra=extra
    )
    return Response(content, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


async def _service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    if isinstance(exc, InvalidInput):
        await _audit_rejected(request, code=exc.code, errors=[])
    return problem_response(
        request,
        status=exc.status_code,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        extra=exc.extra,
        headers=exc.headers,
    )


def _summarise_validation(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Field errors without the offending input, which may be huge or personal."""
    return [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()[:20]
    ]


async def _request_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = _summarise_validation(exc)
    await _audit_rejected(request, code=InvalidInput.code, errors=errors)
    detail = "; ".join(
        f"{'.'.join(str(part) for part in err['loc'])}: {err['msg']}" for err in errors[:3]
    )
    return problem_response(
        request,
        status=422,
        code=InvalidInput.code,
        title=InvalidInput.title,
        detail=detail or InvalidInput.title,
        extra={"errors": errors},
    )


async def _audit_rejected(request: Request, *, code: str, errors: list[dict[str, Any]]) -> None:
    """Rejected input is audited: where, which code, which fields (never the values)."""
    fields = [{"loc": error["loc"], "type": error["type"]} for error in errors]
    await record_rejection(
        request,
        EventType.REQUEST_REJECTED,
        session_header=request.headers.get("x-session-id"),
        details={"code": code, "fields": fields},
    )


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    phrase = HTTPStatus(exc.status_code).phrase
    code = _HTTP_CODES.get(exc.status_code, phrase.lower().replace(" ", "_").replace("-", "_"))
    detail = exc.detail if isinstance(exc.detail, str) else phrase
    if exc.status_code == 404 and detail == phrase:
        detail = f"No route matches {request.method} {request.url.path}"
    elif exc.status_code == 405 and detail == phrase:
        detail = f"{request.method} is not allowed on {request.url.path}"
    return problem_response(
        request,
        status=exc.status_code,
        code=code,
        title=phrase,
        detail=detail,
        headers=exc.headers,
    )


async def _rate_limited(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RateLimited)
    return problem_response(
        request,
        status=429,
        code="rate_limited",
        title="Too many requests",
        detail=f"Too many {exc.kind.value} calls from this address ({exc.rule.limit}); "
        f"try again in {exc.retry_after} s.",
        extra={"kind": exc.kind.value, "retry_after": exc.retry_after},
        headers=exc.headers,
    )


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    # Class names only: driver messages can quote SQL and connection details.
    cause = getattr(exc, "orig", None)
    log.warning(
        "database_unavailable",
        error=type(exc).__name__,
        cause=type(cause).__name__ if cause is not None else None,
    )
    err = DatabaseUnavailable("The database is not reachable right now; try again shortly.")
    return await _service_error(request, err)


def install_error_handlers(app: FastAPI) -> None:
    """Route every expected failure through problem+json; unexpected ones go to middleware."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RateLimited, _rate_limited)
    for exc_type in UNAVAILABLE_ERRORS:
        app.add_exception_handler(exc_type, _database_unavailable)
