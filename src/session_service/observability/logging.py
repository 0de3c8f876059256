"""structlog setup and the pure-ASGI middleware that gives every request its id.

The middleware is pure ASGI (no BaseHTTPMiddleware): it binds `request_id` into structlog's
contextvars for everything logged while the request is handled, echoes it in
`X-Request-ID`, writes one access line, and turns an unhandled exception into a problem+json
500 that still carries the request id.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from collections.abc import Callable
from typing import TextIO

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from session_service.core.errors import PROBLEM_MEDIA_TYPE, problem_body
from session_service.core.settings import Settings

_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=@-]{0,127}")
REQUEST_ID_HEADER = b"x-request-id"

log = structlog.get_logger("session_service.http")


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """JSON lines in production (`LOG_FORMAT=json`), readable console output otherwise."""
    level = getattr(logging, settings.log_level.upper())
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor
    if settings.log_format == "json":
        renderer = structlog.processors.JSONRenderer()
        shared.append(structlog.processors.format_exc_info)
    else:
        # Plain tracebacks: rich ones print local variables, which may hold secrets.
        renderer = structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    output = stream or sys.stdout
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=output),
        cache_logger_on_first_use=False,
    )
    # Libraries that log through the standard library end up in the same format.
    handler = logging.StreamHandler(output)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access", "sqlalchemy.engine", "aiosqlite", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


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
