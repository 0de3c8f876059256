"""What one worker takes from a connection: header size and count, read timeouts, a cap.

A real `serve` process with small HTTP_* settings, driven over raw sockets (an HTTP client
would not send a 4 MB header, dawdle, or hold a connection open saying nothing). The
database connection slots are tested in test_connection_limits.py.
"""

from __future__ import annotations

import os
import resource
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.helpers import assert_problem
from tests.processes import free_port, stop, wait_for_port

LIMITS = {
    "HTTP_MAX_CONNECTIONS": "50",
    "HTTP_KEEP_ALIVE_TIMEOUT": "1.5",
    "HTTP_HEADER_TIMEOUT": "1",
    "HTTP_REQUEST_TIMEOUT": "2",
}


@contextmanager
def _serve(home: Path, env: dict[str, str], *, fd_limit: int | None = None) -> Iterator[int]:
    """`session-service serve` on a free port, up; its port. Stopped by its PID."""
    port = free_port()
    with (home / "serve.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "session_service", "serve"],
            env={
                **os.environ,
                "PORT": str(port),
                "DATABASE_URL": f"sqlite+aiosqlite:///{home / 'serve.db'}",
                "LOG_FORMAT": "json",
                "SHUTDOWN_DRAIN_SECONDS": "0",
                "RATE_LIMIT_ENABLED": "false",
                "CLEANUP_ENABLED": "false",
                **env,
            },
            cwd=home,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=None if fd_limit is None else lambda: _limit_fds(fd_limit),
        )
    try:
        assert wait_for_port(port, process), (home / "serve.log").read_text()
        yield port
    finally:
        stop(process)


def _limit_fds(limit: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with _serve(tmp_path_factory.mktemp("limits"), LIMITS) as port:
        yield port


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def _request(path: str = "/healthz", *, extra: bytes = b"", close: bool = False) -> bytes:
    connection = b"Connection: close\r\n" if close else b""
    return b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s\r\n" % (path.encode(), connection, extra)


def _answer(sock: socket.socket) -> httpx.Response:
    """One response read off the socket (Content-Length framed, as the service answers)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed without an answer after {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = [(name.lower(), value) for name, _, value in (line.partition(": ") for line in lines)]
    length = int(dict(headers)["content-length"])
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed in the middle of the body"
        body += chunk
    return httpx.Response(int(status_line.split()[1]), headers=headers, content=body[:length])


def _closed(sock: socket.socket, within: float) -> bool:
    """Whether the server closes the connection within `within` seconds (EOF or reset)."""
    sock.settimeout(within)
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_an_oversized_head_is_431_and_a_large_body_is_not(port: int) -> None:
    with _connect(port) as sock:
        sock.sendall(_request(extra=b"X-Big: " + b"a" * 4_000_000 + b"\r\n"))
        answer = _answer(sock)
        assert_problem(answer, 431, "headers_too_large")
        assert answer.headers["connection"] == "close"
        assert _closed(sock, 3)
    with _connect(port) as sock:  # just below the default 32 KiB: served
        sock.sendall(_request(extra=b"X-Big: " + b"a" * 30_000 + b"\r\n"))
        assert _answer(sock).status_code == 200
    with _connect(port) as sock:  # head and a body larger than the head limit, in one go
        body = b"{" + b" " * 100_000 + b"}"
        sock.sendall(
            b"POST /api/v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        assert_problem(_answer(sock), 413, "payload_too_large")


def test_five_thousand_headers_are_431(port: int) -> None:
    with _connect(port) as sock:
        sock.sendall(_request(extra=b"a: 1\r\n" * 5000))
        answer = _answer(sock)
        assert_problem(answer, 431, "too_many_headers")
        assert _closed(sock, 3)
    with _connect(port) as sock:
        sock.sendall(_request(extra=b"a: 1\r\n" * 90, close=True))
        assert _answer(sock).status_code == 200


def test_idle_connections_close_and_keep_alive_still_serves(port: int) -> None:
    with _connect(port) as silent, _connect(port) as busy:
        for n in range(3):  # three requests 0.6 s apart: longer in all than either timeout
            busy.sendall(_request())
            assert _answer(busy).status_code == 200
            if n == 2:  # 1.2 s in: still open (HTTP_KEEP_ALIVE_TIMEOUT is 1.5 s)
                assert not select.select([silent], [], [], 0)[0]
            time.sleep(0.6)
        busy.sendall(_request("/api/v1/sessions").replace(b"GET", b"POST", 1))
        assert _answer(busy).status_code == 201
        assert _closed(silent, 3), "a connection that never sent a request stayed open"
        idle_since = time.monotonic()
        assert _closed(busy, 3), "an idle keep-alive connection stayed open"
        assert time.monotonic() - idle_since >= 1.4


@pytest.mark.parametrize(
    ("head", "slow", "limit"),
    [
        (b"", _request(extra=b"X-Slow: " + b"a" * 200), 1),  # HTTP_HEADER_TIMEOUT
        (
            b"POST /api/v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n",
            b"{" + b" " * 198 + b"}",
            2,  # HTTP_REQUEST_TIMEOUT
        ),
    ],
    ids=["head", "body"],
)
def test_a_slow_client_is_cut_off_with_408(
    port: int, head: bytes, slow: bytes, limit: float
) -> None:
    with _connect(port) as sock:
        started = time.monotonic()
        sock.sendall(head)
        for byte in slow:  # one byte every 50 ms: the whole would take 10 s
            if select.select([sock], [], [], 0.05)[0]:
                break
            sock.sendall(bytes([byte]))
        else:
            pytest.fail("the slow client was never cut off")
        took = time.monotonic() - started
        assert_problem(_answer(sock), 408, "request_timeout")
        assert limit <= took < limit + 1.5, took


def test_over_the_cap_new_work_is_503_and_healthz_still_answers(port: int) -> None:
    idle = [_connect(port) for _ in range(50)]
    try:
        for _ in range(10):  # until the server has taken all 50
            time.sleep(0.1)
            started = time.monotonic()
            with _connect(port) as sock:
                sock.sendall(_request("/readyz"))
                answer = _answer(sock)
            if answer.status_code == 503:
                break
        assert time.monotonic() - started < 0.5
        assert_problem(answer, 503, "server_busy")
        assert answer.headers["retry-after"] == "1"
        with _connect(port) as sock:  # liveness is not overload; its connection is not kept
            sock.sendall(_request())
            answer = _answer(sock)
            assert answer.status_code == 200
            assert answer.headers["connection"] == "close"
            assert _closed(sock, 1)
        for sock in idle[:10]:
            sock.close()
        time.sleep(0.2)
        with _connect(port) as sock:
            sock.sendall(_request("/readyz", close=True))
            assert _answer(sock).status_code == 200
    finally:
        for sock in idle:
            sock.close()


def test_a_flood_past_the_fd_limit_leaves_healthz_answering(tmp_path: Path) -> None:
    """The issue's case: more idle connections than `ulimit -n` (there 700 against 600)."""
    with _serve(tmp_path, LIMITS, fd_limit=160) as port:
        flood = [_connect(port) for _ in range(400)]
        try:
            deadline = time.monotonic() + 4
            while True:
                try:
                    with _connect(port) as sock:
                        sock.sendall(_request(close=True))
                        if _answer(sock).status_code == 200:
                            break
                except (OSError, AssertionError):
                    pass
                assert time.monotonic() < deadline, "/healthz never answered again"
                time.sleep(0.1)
        finally:
            for sock in flood:
                sock.close()
