"""Running the server: uvicorn, with a drain before a SIGTERM stops it.

A load balancer keeps sending to an instance until its health check fails, and uvicorn
stops accepting connections as soon as it gets SIGTERM: behind a balancer that does not
retry, a rolling restart failed the requests sent in between. So a SIGTERM first turns
readiness to 503 (`core/lifecycle.draining`) and keeps serving for SHUTDOWN_DRAIN_SECONDS;
then uvicorn's graceful shutdown finishes the requests in flight, and the process exits 0
(uvicorn itself re-raises the signal, which made the exit status 143, or 130 for SIGINT).
A second SIGTERM, or SIGINT, stops at once as before. A signal that comes before the
server runs (during migrations) ends start-up, also with exit status 0:
`stop_signals_before_serving`. Answers that never end by themselves (live event
streams) are ended as the graceful shutdown begins (`core/lifecycle.stop`), or uvicorn
would wait for them for ever; with several workers (uvicorn's own servers, which this hook
does not reach) its graceful shutdown is bounded by `MULTI_WORKER_SHUTDOWN_GRACE` instead.

Connections go through `http/protocol.LimitedHttpProtocol` (HTTP_* limits, and problem+json
for a request the HTTP parser refuses), named by its import path so that every worker
process loads it.
"""

from __future__ import annotations

import contextlib
import resource
import signal
import socket
import threading
from collections.abc import Generator
from types import FrameType
from typing import Any

import structlog
import uvicorn

from session_service.core import lifecycle
from session_service.core.settings import HttpSettings

log = structlog.get_logger(__name__)

HTTP_PROTOCOL = "session_service.http.protocol:LimitedHttpProtocol"

MULTI_WORKER_SHUTDOWN_GRACE = 30
"""With several workers: seconds uvicorn's graceful shutdown waits for answers in flight
(open live streams among them) before it cancels them."""

FD_RESERVE = 64
"""File descriptors a worker needs besides its connections and database pool: the listening
socket, the event loop, logs, Redis, files being stored, refused connections closing."""


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

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        lifecycle.stop()  # live streams end, so the answers in flight can all finish
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        with super().capture_signals():
            try:
                yield
            finally:
                # A stop signal that ended in a clean shutdown is not raised again: exit 0.
                self._captured_signals = [
                    sig for sig in self._captured_signals if sig not in STOP_SIGNALS
                ]


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StoppedBeforeServing(BaseException):
    """A stop signal came before the server ran (a BaseException, like KeyboardInterrupt,
    so that no `except Exception` on the way swallows it)."""


@contextlib.contextmanager
def stop_signals_before_serving() -> Generator[None, None, None]:
    """Until the server handles signals itself, SIGTERM and SIGINT end start-up cleanly.

    Without this, a stop during migrations killed the process with status 143 (SIGTERM's
    default) or a KeyboardInterrupt traceback; the migration's transaction is rolled back
    either way. The server's own handlers replace these while it runs, and these are put
    back after it.
    """

    def stop(sig: int, _frame: FrameType | None) -> None:
        raise StoppedBeforeServing(signal.Signals(sig).name)

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        yield
    except StoppedBeforeServing as stopped:
        log.info("stopped_before_serving", signal=str(stopped))
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve(
    *,
    host: str,
    port: int,
    workers: int,
    drain_seconds: float,
    http: HttpSettings,
    database_connections: int,
) -> None:
    """Serve the app; with one worker, drain on SIGTERM (several: uvicorn's own handling)."""
    check_fd_limit(http.max_connections + database_connections + FD_RESERVE)
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "factory": True,
        "log_config": None,
        "access_log": False,
        "server_header": False,
        "proxy_headers": False,
        "http": HTTP_PROTOCOL,
        "timeout_keep_alive": http.keep_alive_timeout,
    }
    app = "session_service.app:create_app_from_env"
    if workers > 1:
        uvicorn.run(
            app,
            workers=workers,
            timeout_graceful_shutdown=MULTI_WORKER_SHUTDOWN_GRACE,
            **options,
        )
        return
    DrainingServer(uvicorn.Config(app, **options), drain_seconds=drain_seconds).run()


def check_fd_limit(needed: int) -> None:
    """Warn when `ulimit -n` is below what a worker may open at its HTTP_MAX_CONNECTIONS.

    Past the limit accepting fails (asyncio logs and retries a second later) and no new
    connection is answered at all, not even with 503; the cap only helps below it.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        log.warning("fd_limit_below_connection_cap", ulimit_n=soft, needed=needed)
