"""The pure-ASGI middleware that gives every request its id, its access line and its last 500.

Pure ASGI (no BaseHTTPMiddleware): it binds `request_id` into structlog's contextvars for
everything logged while the request is handled, echoes it in `X-Request-ID`, writes one
access line, and turns an unhandled exception into a problem+json 500 that still carries
the request id. A client that leaves mid-request is counted as 499, not as an error.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

import structlog
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from session_service.core.errors import RequestAborted, ResponseInterrupted
from session_service.http.problem_json import PROBLEM_MEDIA_TYPE, problem_body

_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=@-]{0,127}")
REQUEST_ID_HEADER = b"x-request-id"
CLIENT_CLOSED_REQUEST = 499
"""Counted (metrics, access log) for a request whose client left before it was read."""

log = structlog.get_logger("session_service.http")


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            candidate = value.decode("latin-1")
            return candidate if _SANE_REQUEST_ID.fullmatch(candidate) else None
    return None


class RequestContextMiddleware:
    """Request id, log context, access log and the last-resort 500 for every HTTP request."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        access_log: bool = True,
        secret_paths: tuple[str, ...] = (),
        on_response: Callable[[Scope, int, float], None] | None = None,
        on_error: Callable[[Scope, Exception], None] | None = None,
    ) -> None:
        self.app = app
        self.access_log = access_log
        # Told each finished request's scope, status and seconds (metrics); must be cheap.
        self.on_response = on_response
        # Told each unhandled exception (admin alerts); must not block.
        self.on_error = on_error
        # Prefixes whose next path segment is a credential (a signed download token): the
        # access log shows `<prefix>/<redacted>` instead.
        self.secret_paths = secret_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        header = (REQUEST_ID_HEADER, request_id.encode("latin-1"))
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        except ResponseInterrupted as exc:
            log.warning("response_interrupted", path=self._loggable(scope["path"]), reason=str(exc))
            raise
        except (RequestAborted, ClientDisconnect):
            # The client is gone: nothing to answer, nothing to alert about.
            if not response_started:
                status = CLIENT_CLOSED_REQUEST
        except Exception as exc:
            log.exception(
                "unhandled_error", method=scope["method"], path=self._loggable(scope["path"])
            )
            if self.on_error is not None:
                self.on_error(scope, exc)
            if response_started:
                raise
            await _send_internal_error(send_with_id, request_id)
        finally:
            seconds = time.perf_counter() - started
            if self.on_response is not None:
                self.on_response(scope, status, seconds)
            if self.access_log:
                log.info(
                    "request",
                    method=scope["method"],
                    path=self._loggable(scope["path"]),
                    status=status,
                    duration_ms=round(seconds * 1000, 2),
                    client=_client(scope),
                )
            structlog.contextvars.reset_contextvars(**tokens)

    def _loggable(self, path: str) -> str:
        for prefix in self.secret_paths:
            if path.startswith(prefix + "/"):
                return prefix + "/<redacted>"
        return path


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


async def _send_internal_error(send: Send, request_id: str) -> None:
    body = problem_body(
        status=500,
        code="internal_error",
        title="Internal error",
        detail="Something went wrong on our side. Quote the request id when reporting it.",
        request_id=request_id,
    )
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": body})
