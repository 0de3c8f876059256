"""Connection limits in front of the app: header size and count, read timeouts, a cap.

uvicorn's httptools protocol has none of these: llhttp buffers a header of any size, a
connection that never sends a request is never closed (uvicorn's keep-alive timer starts
after a first response), a client may send its head a byte at a time for ever, and the
connections are bounded only by `ulimit -n`, where accepting fails and nothing, `/healthz`
included, is answered. This subclass adds them for a counter and a clock reading per
request on top of uvicorn's own work (its one timer per connection is re-armed lazily).
Its refusals are problem+json, written here: no request reached the app. Settings: HTTP_*
(`core.settings.HttpSettings`); see docs/connections.md.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from typing import ClassVar

import structlog
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from session_service.core.errors import MalformedRequest
from session_service.core.settings import HttpSettings, get_settings
from session_service.http.problem_json import PROBLEM_MEDIA_TYPE, problem_body

GRACE_SECONDS = 1.0
"""How long a refused client may go on sending (read and dropped) before the connection
closes: closing with unread data sends a reset, which can destroy the answer before the
client reads it. Also how long a connection over the cap has to send its request."""

LIVENESS_REQUEST = b"GET /healthz "
"""Served even over the cap (on a connection then closed): a busy process is alive, and a
failed liveness probe would restart it."""

CAP_WARNING_INTERVAL = 60.0
"""At most one `http_connection_cap_reached` warning per worker in this many seconds."""

log = structlog.get_logger(__name__)


@functools.cache
def _limits() -> HttpSettings:
    """The process's HTTP_* settings, read once (workers are separate processes)."""
    return get_settings().http


class _Refused(Exception):
    """Stops the parser from a callback; uvicorn then calls `send_400_response`."""


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with HTTP_* limits; named by `serving.serve`."""

    _cap_warned_at: ClassVar[float] = float("-inf")

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, object],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = _limits()
        # Checks the request being received; over the cap or refused: closes the connection.
        self._timer: asyncio.TimerHandle | None = None
        self._started: float | None = None  # when the request being received began
        self._in_head = True  # no request, or one whose headers are still arriving
        self._head_bytes = 0
        self._over_cap = False
        self._refused = False  # answered and closing: what still arrives is dropped
        self._refusal: tuple[int, str, str, str] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        over_cap = len(self.connections) >= self.limits.max_connections
        super().connection_made(transport)
        if over_cap:
            self._over_cap = True
            self._timer = self.loop.call_later(GRACE_SECONDS, transport.close)
            self._warn_at_cap()
        else:
            # uvicorn arms its keep-alive timer only after a response: a silent new
            # connection would stay open for ever.
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._over_cap:
            self._over_cap_request(data)
            return
        if self._started is None:
            self._started = self.loop.time()
            if self._timer is None:
                self._timer = self.loop.call_later(self.limits.header_timeout, self._check_read)
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if (
            self._in_head
            and self._head_bytes > self.limits.max_header_bytes
            and not self._refused
            and not self.transport.is_closing()
        ):
            self._refuse(
                431,
                "headers_too_large",
                "Request header fields too large",
                f"The request line and headers exceed {self.limits.max_header_bytes} bytes.",
            )

    def _over_cap_request(self, data: bytes) -> None:
        """Over the cap only a liveness probe is served, and its connection closed after it."""
        self._over_cap = False
        self._cancel_timer()
        if not data.startswith(LIVENESS_REQUEST):
            self._refuse(
                503,
                "server_busy",
                "Server busy",
                "This worker has all the connections it takes; try again shortly.",
                b"retry-after: 1\r\n",
            )
            return
        self.data_received(data)
        self.shutdown()  # uvicorn's: close after the response under way (or now, if none)

    def on_headers_complete(self) -> None:
        if len(self.headers) > self.limits.max_headers:
            self._refusal = (
                431,
                "too_many_headers",
                "Request header fields too large",
                f"The request has more than {self.limits.max_headers} headers.",
            )
            raise _Refused
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._started = None  # the timer, if it fires before the next request, does nothing
        self._in_head = True
        self._head_bytes = 0
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parser error (a broken request line or header, a control
        character in a value), which is also how a callback's refusal ends up: problem+json
        like every other error, never uvicorn's plain text."""
        if self._refusal is not None:
            self._refuse(*self._refusal)
            return
        request_id = uuid.uuid4().hex
        log.warning("malformed_request", request_id=request_id, reason=msg)
        self._refuse(
            MalformedRequest.status_code,
            MalformedRequest.code,
            MalformedRequest.title,
            "The request is not valid HTTP (its request line or a header).",
            request_id=request_id,
        )

    def _check_read(self) -> None:
        """408 once the head took HTTP_HEADER_TIMEOUT, or head and body HTTP_REQUEST_TIMEOUT."""
        self._timer = None
        if self._started is None:
            return  # between requests: uvicorn's keep-alive timer watches those
        now = self.loop.time()
        if self._in_head:
            deadline = self._started + self.limits.header_timeout
        else:
            if self.flow.read_paused:  # the app is not taking the body: not the client's fault
                self._started = now
            deadline = self._started + self.limits.request_timeout
        if deadline > now:
            self._timer = self.loop.call_later(deadline - now, self._check_read)
            return
        self._refuse(
            408,
            "request_timeout",
            "Request timeout",
            "The request did not arrive in time; send it again on a new connection.",
        )

    def _refuse(
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        headers: bytes = b"",
        *,
        request_id: str | None = None,
    ) -> None:
        """Answer problem+json where nothing else was answered yet, then close."""
        self._refused = True
        self._over_cap = False
        self._cancel_timer()
        self._unset_keepalive_if_required()
        cycle = self.cycle
        # Reading a head, `cycle` is the previous request's; reading a body, this one's.
        if cycle is None:
            answer = True
        elif self._in_head:
            answer = cycle.response_complete
        else:
            answer = not cycle.response_started
        if cycle is not None:
            cycle.disconnected = True  # the app's receive ends and its send is dropped
            cycle.message_event.set()
        if not answer:
            self.transport.close()
            return
        request_id = request_id or uuid.uuid4().hex
        body = problem_body(
            status=status, code=code, title=title, detail=detail, request_id=request_id
        )
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            f"content-type: {PROBLEM_MEDIA_TYPE}\r\n".encode(),
            b"content-length: %d\r\n" % len(body),
            b"x-request-id: %s\r\n" % request_id.encode(),
            headers,
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self.flow.resume_reading()
        self._timer = self.loop.call_later(GRACE_SECONDS, self.transport.close)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _warn_at_cap(self) -> None:
        now = self.loop.time()
        if now - LimitedHttpProtocol._cap_warned_at >= CAP_WARNING_INTERVAL:
            LimitedHttpProtocol._cap_warned_at = now
            log.warning("http_connection_cap_reached", max_connections=self.limits.max_connections)
