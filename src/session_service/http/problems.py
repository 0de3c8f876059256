"""Problem+json answers (RFC 9457): the one translation of errors into HTTP, and their OpenAPI.

Services raise `ServiceError` subclasses (`core/errors.py`); nothing below the route layer
builds HTTP responses. Every error answer carries a stable `code` the frontend switches on
and the `request_id` that finds the request's log lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Literal

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from session_service.audit.events import EventType
from session_service.core.errors import InvalidInput, MalformedJson, RequestAborted, ServiceError
from session_service.http.codes import ProblemCode
from session_service.http.deps import authenticated_session
from session_service.http.problem_json import PROBLEM_MEDIA_TYPE, problem_body
from session_service.http.rejections import record_rejection
from session_service.ratelimit.limiter import RateLimited

log = structlog.get_logger(__name__)


# Members sent with some codes only: optional, never null.
Absent = SkipJsonSchema[None]


class FieldError(BaseModel):
    """One invalid field of a `validation_error`, without the value that was sent."""

    loc: list[str | int] = Field(
        description="Where: `body`, `query`, `path` or `header`, then the field."
    )
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details with the service's stable `code` and the request id.

    The members after `request_id` are sent with the codes their descriptions name, and
    only with those.
    """

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:session-service:problem:session_invalid",
                    "title": "Session invalid",
                    "status": 401,
                    "detail": "The session is not valid (expired); start a new one with a reset.",
                    "code": "session_invalid",
                    "request_id": "4f0c9a4be0d84e5c9a2f3b1d6c7e8f90",
                    "reason": "expired",
                    "action": "reset",
                }
            ]
        },
    )

    type: str = Field(description="`urn:session-service:problem:<code>`.")
    title: str
    status: int
    detail: str
    code: ProblemCode
    request_id: str | None = Field(description="Also in `X-Request-ID` and every log line.")
    reason: str | Absent = Field(
        default=None,
        description="`session_invalid`: why (`malformed`, `not_found`, `expired`, `reset`, "
        "`rotated`, `upgraded`); `upload_rejected`: which check failed (`size_mismatch`, "
        "`type_mismatch`, `signature_mismatch`).",
    )
    action: Literal["reset"] | Absent = Field(
        default=None, description="`session_invalid`: what the browser does next."
    )
    errors: list[FieldError] | Absent = Field(
        default=None, description="`validation_error`: each invalid field."
    )
    kind: str | Absent = Field(
        default=None, description="`rate_limited`: the kind of call (`create`, `validate`, ...)."
    )
    retry_after: int | Absent = Field(
        default=None, description="`rate_limited`: seconds until a call is counted again."
    )
    allowed: list[str] | Absent = Field(
        default=None, description="`unsupported_content_type`: the types that may be uploaded."
    )
    max_bytes: int | Absent = Field(
        default=None, description="`file_too_large`: the largest upload."
    )
    max_files: int | Absent = Field(
        default=None, description="`file_limit_reached`: the files a session may hold."
    )
    quota_bytes: int | Absent = Field(
        default=None, description="`quota_exceeded`: the bytes a session may hold."
    )
    used_bytes: int | Absent = Field(
        default=None, description="`quota_exceeded`: the bytes the session holds."
    )
    session_status: str | Absent = Field(
        default=None,
        description="`session_active`, `session_inactive`: the session's status.",
    )
    max_chars: int | Absent = Field(
        default=None, description="`message_too_long`: the longest message."
    )
    max_messages: int | Absent = Field(
        default=None, description="`conversation_limit_reached`: the messages a session may hold."
    )
    max_conversations: int | Absent = Field(
        default=None,
        description="`conversation_limit_reached`: the conversations a session may hold.",
    )
    files: list[str] | Absent = Field(
        default=None, description="`attachment_not_uploaded`: the ids that are not."
    )
    checks: dict[str, str] | Absent = Field(
        default=None, description="`not_ready`: each dependency's state."
    )


_DESCRIPTIONS = {
    400: "A body that is not JSON (`malformed_json`) or not the form, or a Host not allowed.",
    403: "Refused: a key of another role, or a signature, expiry or policy.",
    401: "Session invalid (`session_invalid`, with `reason`: reset) or no valid API key.",
    404: "Not found.",
    409: "Conflict with the current state.",
    413: "Request body too large.",
    422: "Invalid input.",
    429: "Rate limited (`rate_limited`): `Retry-After` says when to try again.",
    500: "Unexpected error (no internals shown).",
    503: "Not now: the database or storage is unreachable (`database_unavailable`, "
    "`storage_unavailable`; `Retry-After`), or no keys are configured (`auth_not_configured`).",
}


def problem_responses(*statuses: int, unexpected: bool = True) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for the given statuses plus the 503 every route may answer (its
    database, storage or keys missing) and the 500 of an unexpected failure.

    `unexpected=False` leaves the 500 out, for a route that reads nothing but settings and
    process memory: no dependency of it can fail (tests/test_declared_statuses.py drives
    every declared status).
    """
    tail = (500, 503) if unexpected else (503,)
    return {
        status: {
            "model": Problem,
            "description": _DESCRIPTIONS[status],
            "content": {PROBLEM_MEDIA_TYPE: {}},
        }
        for status in (*statuses, *tail)
    }


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


def error_response(request: Request, exc: ServiceError) -> Response:
    """The problem answer for a service error (also for errors a route returns, not raises)."""
    return problem_response(
        request,
        status=exc.status_code,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        extra=exc.extra,
        headers=exc.headers,
    )


async def _service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    if exc.record is not None:
        await record_rejection(
            request,
            EventType(exc.record.event_type),
            code=exc.record.code or exc.code,
            session_id=exc.record.session_id,
            details=exc.record.details,
        )
    elif isinstance(exc, InvalidInput):
        await _audit_rejected(request, code=exc.code, errors=[])
    return error_response(request, exc)


def _summarise_validation(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Field errors without the offending input, which may be huge or personal."""
    return [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()[:20]
    ]


async def _request_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if any(err.get("type") == "json_invalid" for err in exc.errors()):
        return await _malformed_json(request)
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
        code=code,
        session_id=authenticated_session(request.scope),
        details={"code": code, "fields": fields},
    )


async def _malformed_json(request: Request) -> Response:
    """A body that is not JSON: 400, audited like rejected input (the code, no content)."""
    await _audit_rejected(request, code=MalformedJson.code, errors=[])
    return error_response(
        request, MalformedJson("The request body is not valid JSON (syntax, encoding or depth).")
    )


def _allowed_methods(request: Request) -> str:
    """Every method the path is served with: the router's 405 names only its first route's."""
    path = request.scope["path"]
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):  # included routers' routes, prefixed
        pattern = getattr(route, "path_regex", None)
        if route.methods and pattern is not None and pattern.match(path):
            methods |= route.methods
    return ", ".join(sorted(methods))


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.__cause__ is not None:
        # FastAPI's 400 for a JSON body it could not read (disconnect, encoding, depth).
        if isinstance(exc.__cause__, ClientDisconnect):
            raise RequestAborted from exc.__cause__
        return await _malformed_json(request)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
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
        headers=headers,
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


def install_error_handlers(app: FastAPI) -> None:
    """Route every expected failure through problem+json; unexpected ones go to middleware."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RateLimited, _rate_limited)
