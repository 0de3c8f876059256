"""The error model: problem+json everywhere, request ids, no internals, 503 without a database."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from session_service.app import create_app
from session_service.core.settings import Settings
from tests.helpers import Running, assert_problem, running


class TestProblemAnswers:
    async def test_unknown_route_is_404(self, client: httpx.AsyncClient) -> None:
        body = assert_problem(await client.get("/api/v1/nothing-here"), 404, "not_found")
        assert body["type"] == "urn:session-service:problem:not_found"
        assert "/api/v1/nothing-here" in body["detail"]

    async def test_wrong_method_is_405_with_allow(self, client: httpx.AsyncClient) -> None:
        response = await client.put("/api/v1/sessions")
        assert_problem(response, 405, "method_not_allowed")
        assert response.headers["allow"] == "POST"

    async def test_unexpected_error_is_500_without_internals(
        self, app: Running, client: httpx.AsyncClient
    ) -> None:
        async def explode() -> None:
            raise RuntimeError("secret internal detail: password=hunter2")

        app.app.add_api_route("/test-explode", explode)
        response = await client.get("/test-explode", headers={"X-Request-ID": "boom-1"})
        body = assert_problem(response, 500, "internal_error")
        assert body["request_id"] == "boom-1"
        assert "hunter2" not in response.text
        assert "RuntimeError" not in response.text


class TestRequestId:
    async def test_generated_when_absent(self, client: httpx.AsyncClient) -> None:
        first = (await client.get("/healthz")).headers["x-request-id"]
        second = (await client.get("/healthz")).headers["x-request-id"]
        assert first != second
        assert len(first) == 32

    async def test_sane_incoming_id_is_kept(self, client: httpx.AsyncClient) -> None:
        for sane in ("abc-123", "0f8fad5b-d9cb-469f-a165-70867728950e", "trace:span/1"):
            response = await client.get("/healthz", headers={"X-Request-ID": sane})
            assert response.headers["x-request-id"] == sane

    async def test_insane_incoming_id_is_replaced(self, client: httpx.AsyncClient) -> None:
        for insane in ("a" * 129, "has space", "<script>", "-leading-dash", ""):
            response = await client.get("/healthz", headers={"X-Request-ID": insane})
            assert response.headers["x-request-id"] != insane
            assert len(response.headers["x-request-id"]) == 32


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class TestDatabaseUnreachable:
    @pytest.fixture
    async def down_client(self, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/nowhere"
        app = create_app(settings.with_overrides(database_url=url, database_connect_timeout=2))
        async with running(app) as started:
            transport = httpx.ASGITransport(app=started)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                yield http

    async def test_writes_answer_503(self, down_client: httpx.AsyncClient) -> None:
        body = assert_problem(
            await down_client.post("/api/v1/sessions"), 503, "database_unavailable"
        )
        assert "127.0.0.1" not in body["detail"]

    async def test_validate_answers_503(self, down_client: httpx.AsyncClient) -> None:
        response = await down_client.post(
            "/api/v1/session/validate",
            headers={"X-Session-ID": "0f8fad5b-d9cb-469f-a165-70867728950e"},
        )
        assert_problem(response, 503, "database_unavailable")

    async def test_readiness_fails_but_liveness_holds(self, down_client: httpx.AsyncClient) -> None:
        body = assert_problem(await down_client.get("/readyz"), 503, "not_ready")
        assert body["checks"]["database"].startswith("unavailable")
        assert (await down_client.get("/healthz")).status_code == 200


class TestNoParametersInErrors:
    async def test_database_errors_do_not_quote_bound_values(self, app: Running) -> None:
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError

        secret = "visitor@example.com"
        with pytest.raises(DBAPIError) as caught:
            async with app.resources.engine.connect() as conn:
                await conn.execute(text("SELECT * FROM no_such_table WHERE x = :v"), {"v": secret})
        assert secret not in str(caught.value)
