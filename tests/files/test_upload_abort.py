"""A visitor leaving mid-upload, against the real server: no 500, no alert, nothing left over.

The browser module's cancel aborts its XMLHttpRequest, which closes the connection while
the form is still being sent. Here a raw socket sends half the form, then closes.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.files.helpers import PDF
from tests.protection.test_metrics import sample
from tests.test_serve import _assert_stopped_cleanly, start_server

CONTENT = PDF + b"0" * (512 * 1024)  # several reads: the server is mid-file when it ends


@pytest.fixture
def alerts() -> Iterator[tuple[str, list[bytes]]]:
    """A webhook receiver: its URL and the alerts it got."""
    received: list[bytes] = []

    class Sink(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts", received
    finally:
        server.shutdown()
        server.server_close()


def _until(condition: Callable[[], bool], what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)


def _log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


@pytest.fixture(params=["sqlite", "postgresql"])
def own_database(request: pytest.FixtureRequest) -> dict[str, str]:
    """A database of the server's own (it migrates it), so no row outlives the test."""
    if request.param == "sqlite":
        return {}  # start_server's file in the test's directory
    return {"DATABASE_URL": request.getfixturevalue("postgres").create()}


def test_a_client_leaving_mid_upload_is_no_error(
    tmp_path: Path, own_database: dict[str, str], alerts: tuple[str, list[bytes]]
) -> None:
    alert_url, received_alerts = alerts
    env = {**own_database, "ALERT_WEBHOOK_URL": alert_url}
    process, base, log_path = start_server(tmp_path, env)
    incoming = tmp_path / "var" / "storage" / "incoming"
    try:
        http = httpx.Client(base_url=base, timeout=10)
        token = http.post("/api/v1/sessions").json()["token"]
        slot = http.post(
            "/api/v1/session/uploads",
            headers={"X-Session-ID": token},
            json={"name": "a.pdf", "content_type": "application/pdf", "size": len(CONTENT)},
        ).json()
        form = httpx.Request(
            "POST",
            slot["upload"]["url"],
            data=slot["upload"]["fields"],
            files={"file": ("a.pdf", CONTENT, "application/pdf")},
        )
        body = form.read()
        head = (
            f"POST {form.url.raw_path.decode()} HTTP/1.1\r\nHost: {form.url.netloc.decode()}\r\n"
            f"Content-Type: {form.headers['content-type']}\r\nContent-Length: {len(body)}\r\n"
            "X-Request-ID: aborted-upload-1\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", form.url.port or 80)) as sock:
            sock.sendall(head + body[: len(body) // 2])
            _until(lambda: any(incoming.iterdir()), "the file's bytes reached the disk")

        def logged(event: str) -> list[dict[str, Any]]:
            return [
                line
                for line in _log(log_path)
                if line["event"] == event and line.get("request_id") == "aborted-upload-1"
            ]

        _until(lambda: bool(logged("request")), "the aborted request's access line")
        [aborted] = logged("upload_aborted")
        assert aborted["key"] == slot["upload"]["fields"]["key"]
        assert 0 < aborted["received_bytes"] < len(body)
        assert logged("unhandled_error") == []
        assert logged("request")[0]["status"] == 499
        assert list(incoming.iterdir()) == []  # the partial file is gone
        metrics = http.get("/metrics").text
        upload = {"method": "POST", "route": "/api/v1/storage/uploads"}
        assert sample(metrics, "session_service_http_requests_total", **upload, status="499") == 1
        assert sample(metrics, "session_service_http_requests_total", **upload, status="500") == 0
        time.sleep(0.5)  # an alert would have been delivered to the local receiver by now
        assert received_alerts == []

        # The file is still pending: the same form goes through, then completes.
        posted = http.post(
            form.url, content=body, headers={"content-type": form.headers["content-type"]}
        )
        assert posted.status_code == 204, posted.text
        completed = http.post(
            f"/api/v1/session/files/{slot['file']['id']}/complete", headers={"X-Session-ID": token}
        )
        assert completed.status_code == 200, completed.text
        assert completed.json()["status"] == "uploaded"
        http.close()
    finally:
        process.terminate()
        process.wait(timeout=15)
        _assert_stopped_cleanly(process, log_path)
