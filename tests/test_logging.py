"""Structured logs: JSON lines in production mode, each carrying the request id."""

from __future__ import annotations

import io

import httpx
import pytest

from session_service.core.settings import Settings
from session_service.observability.logging import configure_logging
from tests.conftest import service_log_lines
from tests.helpers import Running


class TestJsonLogs:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"access_log": True}

    async def test_every_line_of_a_request_carries_its_id(
        self, client: httpx.AsyncClient, json_log: io.StringIO
    ) -> None:
        response = await client.post("/api/v1/sessions", headers={"X-Request-ID": "log-test-1"})
        assert response.status_code == 201
        lines = service_log_lines(json_log)
        events = {line["event"] for line in lines}
        assert {"session_opened", "audit_event", "request"} <= events
        # The live-updates listener (PostgreSQL) connects in the background meanwhile.
        background = {line["event"] for line in lines if "request_id" not in line}
        assert background <= {"live_listener_listening", "live_listener_unavailable"}
        assert all(line["request_id"] == "log-test-1" for line in lines if "request_id" in line)
        access = next(line for line in lines if line["event"] == "request")
        assert access["status"] == 201
        assert access["path"] == "/api/v1/sessions"

    async def test_unhandled_error_is_logged_with_request_id_and_traceback(
        self, client: httpx.AsyncClient, app: Running, json_log: io.StringIO
    ) -> None:
        async def explode() -> None:
            raise RuntimeError("kaboom")

        app.app.add_api_route("/test-explode", explode)
        await client.get("/test-explode", headers={"X-Request-ID": "log-test-2"})
        error = next(
            line for line in service_log_lines(json_log) if line["event"] == "unhandled_error"
        )
        assert error["request_id"] == "log-test-2"
        assert "RuntimeError: kaboom" in str(error["exception"])

    async def test_context_does_not_leak_between_requests(
        self, client: httpx.AsyncClient, json_log: io.StringIO
    ) -> None:
        await client.get("/healthz", headers={"X-Request-ID": "first"})
        await client.get("/healthz", headers={"X-Request-ID": "second"})
        ids = [line["request_id"] for line in service_log_lines(json_log)]
        assert ids == ["first", "second"]


class TestConsoleLogs:
    def test_console_format_is_human_readable(self) -> None:
        import structlog

        stream = io.StringIO()
        configure_logging(Settings(log_format="console"), stream=stream)
        try:
            structlog.get_logger("t").info("something_happened", answer=42)
        finally:
            configure_logging(Settings())
        line = stream.getvalue()
        assert "something_happened" in line
        assert "answer=42" in line
        assert not line.startswith("{")
