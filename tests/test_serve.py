"""The real `session-service serve` process, over real HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from session_service.migrations import MIGRATION_LOCK_KEY


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def start_server(
    home: Path, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """`session-service serve` on a free port in `home`, ready; its process, URL and log."""
    port = _free_port()
    log_path = home / "serve.log"
    env = {
        **os.environ,
        "PORT": str(port),
        "DATABASE_URL": f"sqlite+aiosqlite:///{home / 'serve.db'}",
        "LOG_FORMAT": "json",
        "SHUTDOWN_DRAIN_SECONDS": "0",  # tests of the drain set their own
        **(extra_env or {}),
    }
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "session_service", "serve"],
            env=env,
            cwd=home,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return process, base, log_path
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"server did not start:\n{log_path.read_text()}")
        time.sleep(0.1)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    process, base, log_path = start_server(tmp_path)
    try:
        yield base, log_path
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
    assert process.returncode == 0, log_path.read_text()
    assert "Application shutdown complete." in log_path.read_text()


def test_sigterm_lets_an_in_flight_upload_finish(tmp_path: Path) -> None:
    process, base, log_path = start_server(tmp_path)
    try:
        session = httpx.post(f"{base}/api/v1/sessions").json()
        content = b"%PDF-1.7\n" + b"0" * (40 * 16384)
        slot = httpx.post(
            f"{base}/api/v1/session/uploads",
            json={"name": "a.pdf", "content_type": "application/pdf", "size": len(content)},
            headers={"X-Session-ID": session["token"]},
        ).json()
        form = httpx.Request(
            "POST",
            slot["upload"]["url"],
            data=slot["upload"]["fields"],
            files={"file": ("a.pdf", content)},
        )
        body = form.read()
        sending = threading.Event()

        def slowly() -> Iterator[bytes]:
            for start in range(0, len(body), 16384):
                yield body[start : start + 16384]
                sending.set()
                time.sleep(0.02)  # about a second in all

        answer: list[httpx.Response] = []
        upload = threading.Thread(
            target=lambda: answer.append(
                httpx.post(
                    form.url,
                    content=slowly(),
                    headers={"content-type": form.headers["content-type"]},
                    timeout=30,
                )
            )
        )
        upload.start()
        assert sending.wait(10)
        process.send_signal(signal.SIGTERM)  # mid-upload
        upload.join(30)
        assert answer, "the upload got no answer"
        assert answer[0].status_code == 204, answer[0].text
        process.wait(timeout=30)
    finally:
        _assert_stopped_cleanly(process, log_path)


def test_sigterm_drains_readiness_first_then_exits_0(tmp_path: Path) -> None:
    """Balancers see 503 on /readyz at once; requests are still served until the drain ends."""
    process, base, log_path = start_server(tmp_path, {"SHUTDOWN_DRAIN_SECONDS": "2"})
    try:
        assert httpx.get(f"{base}/readyz").status_code == 200
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        while httpx.get(f"{base}/readyz").status_code != 503:
            assert time.monotonic() < deadline, "readiness never turned"
            time.sleep(0.05)
        assert httpx.get(f"{base}/readyz").json()["checks"] == {"process": "draining"}
        assert httpx.post(f"{base}/api/v1/sessions").status_code == 201  # still serving
        assert process.poll() is None
        process.wait(timeout=15)
    finally:
        _assert_stopped_cleanly(process, log_path)
    assert "shutdown_draining" in log_path.read_text()


def _assert_stopped_cleanly(process: subprocess.Popen[bytes], log_path: Path) -> None:
    """Exit 0 after uvicorn's graceful shutdown (a process still running is killed first)."""
    if process.poll() is None:
        process.kill()
        process.wait()
    assert process.returncode == 0, log_path.read_text()
    assert "Application shutdown complete." in log_path.read_text()


def test_session_flow_over_http(server: tuple[str, Path]) -> None:
    base, log_path = server
    with httpx.Client(base_url=base, timeout=5) as http:
        created = http.post("/api/v1/sessions")
        assert created.status_code == 201
        session_id, token = created.json()["id"], created.json()["token"]
        valid = http.post("/api/v1/session/validate", headers={"X-Session-ID": token})
        assert valid.json()["valid"] is True
        assert valid.json()["session"]["id"] == session_id
        reset = http.post(
            "/api/v1/session/reset",
            headers={"X-Session-ID": token, "X-Request-ID": "serve-reset-1"},
            json={"reason": "tampered"},
        )
        assert reset.status_code == 201
        assert reset.headers["x-request-id"] == "serve-reset-1"
        new = reset.json()["session"]
        again = http.get("/api/v1/session", headers={"X-Session-ID": token})
        assert again.status_code == 401
        assert again.json()["reason"] == "reset"
        assert again.headers["content-type"] == "application/problem+json"
        assert "server" not in again.headers  # no version banner
    # The access line is written after the response is sent: wait for it, do not guess.
    wanted = {"session_reset", "audit_event", "request"}
    deadline = time.monotonic() + 10
    while True:
        lines = [
            json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")
        ]
        seen = {line["event"] for line in lines if line.get("request_id") == "serve-reset-1"}
        if wanted <= seen or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert wanted <= seen
    # Logs name sessions by their public id; the tokens never reach them.
    [reset_line] = [ln for ln in lines if ln["event"] == "session_reset"]
    assert reset_line["session_id"] == new["id"]
    log_text = log_path.read_text()
    assert token not in log_text
    assert new["token"] not in log_text


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /api/v1/session/reset HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\x01\r\nContent-Length: 2\r\n\r\n{}",
        b"POST /api/v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: x\r\n\r\n",
        b"GET /api/v1/\x7f HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    ],
    ids=["control_character_in_content_type", "bad_content_length", "bad_request_line"],
)
def test_a_request_that_is_not_http_is_answered_problem_json(
    server: tuple[str, Path], request_bytes: bytes
) -> None:
    """The parser refuses it before the app: the answer is still problem+json, not plain text."""
    base, log_path = server
    with socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1]))) as sock:
        sock.sendall(request_bytes)
        answer = b""
        while chunk := sock.recv(65536):  # the server closes the connection after it
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value for name, _, value in (ln.partition(": ") for ln in lines)}
    assert status.startswith("HTTP/1.1 400 "), answer
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["code"] == "malformed_request"
    assert problem["status"] == 400
    assert problem["request_id"] == headers["x-request-id"]
    assert problem["request_id"] in log_path.read_text()  # the log line it names


def test_a_stop_during_migrations_exits_0(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """SIGTERM before the server runs (here: migrations waiting for their lock) is a clean
    stop too, not status 143; the migration's transaction is rolled back."""
    from tests.conftest import PostgresFactory

    factory: PostgresFactory = request.getfixturevalue("postgres")
    url = factory.create()
    log_path = tmp_path / "serve.log"

    def start() -> subprocess.Popen[bytes]:
        with log_path.open("w") as log_file:
            return subprocess.Popen(
                [sys.executable, "-m", "session_service", "serve"],
                env={**os.environ, "DATABASE_URL": url, "PORT": str(_free_port())},
                cwd=tmp_path,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )

    async def stop_while_waiting() -> tuple[int, str]:
        dsn = url.replace("postgresql+asyncpg", "postgresql")
        conn, watch = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
                process = await asyncio.to_thread(start)
                # From another connection: statistics stay as they were within a transaction.
                waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory'"
                deadline = time.monotonic() + 30
                while not await watch.fetchval(waiting):
                    assert process.poll() is None, log_path.read_text()
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.05)
                process.send_signal(signal.SIGTERM)
                code = await asyncio.to_thread(process.wait, 30)
                return code, log_path.read_text()
        finally:
            await conn.close()
            await watch.close()

    code, log = asyncio.run(stop_while_waiting())
    assert code == 0, log
    assert "stopped_before_serving" in log
    assert "Traceback" not in log
