"""Running the server: uvicorn, with a drain before a SIGTERM stops it.

A load balancer keeps sending to an instance until its health check fails, and uvicorn
stops accepting connections as soon as it gets SIGTERM: behind a balancer that does not
retry, a rolling restart failed the requests sent in between. So a SIGTERM first turns
readiness to 503 (`core/lifecycle.draining`) and keeps serving for SHUTDOWN_DRAIN_SECONDS;
then uvicorn's graceful shutdown finishes the requests in flight, and the process exits 0
(uvicorn itself re-raises the signal, which makes the exit status 143). A second SIGTERM,
or SIGINT, stops at once as before.

A request the HTTP parser refuses never reaches the app; it is answered problem+json
(`malformed_request`) like every other error, not with uvicorn's plain text.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import uuid
from collections.abc import Generator
from types import FrameType
from typing import Any

import structlog
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from session_service.core import lifecycle
from session_service.core.errors import MalformedRequest
from session_service.http.problem_json import PROBLEM_MEDIA_TYPE, problem_body

log = structlog.get_logger(__name__)


class DrainingServer(uvicorn.Server):
    """uvicorn's server with a readiness drain on the first SIGTERM."""

    def __init__(self, config: uvicorn.Config, *, drain_seconds: float) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM or self.drain_seconds <= 0 or lifecycle.draining.is_set():
            super().handle_exit(sig, frame)
            return
        lifecycle.draining.set()
        log.info("shutdown_draining", seconds=self.drain_seconds)
        timer = threading.Timer(self.drain_seconds, super().handle_exit, (sig, frame))
        timer.daemon = True
        timer.start()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        with super().capture_signals():
            try:
                yield
            finally:
                # A SIGTERM that ended in a clean shutdown is not raised again: exit 0.
                self._captured_signals = [
                    sig for sig in self._captured_signals if sig != signal.SIGTERM
                ]


class ProblemHttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, whose answer to an unparsable request is problem+json."""

    def send_400_response(self, msg: str) -> None:
        request_id = uuid.uuid4().hex
        log.warning("malformed_request", request_id=request_id, reason=msg)
        body = problem_body(
            status=MalformedRequest.status_code,
            code=MalformedRequest.code,
            title=MalformedRequest.title,
            detail="The request is not valid HTTP (its request line or a header).",
            request_id=request_id,
        )
        headers = [
            *self.server_state.default_headers,
            (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id.encode()),
            (b"connection", b"close"),
        ]
        head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        self.transport.write(b"HTTP/1.1 400 Bad Request\r\n" + head + b"\r\n" + body)
        self.transport.close()


def serve(*, host: str, port: int, workers: int, drain_seconds: float) -> None:
    """Serve the app; with one worker, drain on SIGTERM (several: uvicorn's own handling)."""
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "factory": True,
        "log_config": None,
        "access_log": False,
        "server_header": False,
        "proxy_headers": False,
        "http": ProblemHttpProtocol,
    }
    app = "session_service.app:create_app_from_env"
    if workers > 1:
        uvicorn.run(app, workers=workers, **options)
        return
    DrainingServer(uvicorn.Config(app, **options), drain_seconds=drain_seconds).run()
