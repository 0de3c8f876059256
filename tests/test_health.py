"""Liveness, readiness and the documentation endpoints."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from session_service.app import create_app
from session_service.core.settings import Settings
from tests.conftest import FakeClock
from tests.helpers import Running, assert_problem, running


class TestOperations:
    async def test_healthz(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    async def test_readyz_checks_the_database(
        self, client: httpx.AsyncClient, backend: str
    ) -> None:
        response = await client.get("/readyz")
        assert response.status_code == 200
        body = response.json()
        # Live updates are reported, never gating: the listener may still be connecting.
        live = body["checks"].pop("live")
        assert body == {"status": "ready", "checks": {"database": "ok", "storage": "ok"}}
        if backend == "sqlite":
            assert live == "ok: in-process"
        else:
            assert live in ("ok: listening", "degraded: listener reconnecting")

    async def test_docs_redoc_and_openapi_are_served(self, client: httpx.AsyncClient) -> None:
        assert "swagger-ui" in (await client.get("/docs")).text
        assert "redoc" in (await client.get("/redoc")).text.lower()
        document = (await client.get("/openapi.json")).json()
        assert "/api/v1/session/validate" in document["paths"]


class TestReadinessUnderLoad:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"database_pool_size": 2, "database_max_overflow": 0, "database_pool_timeout": 0.5}

    async def test_a_busy_request_pool_is_not_an_outage(
        self, client: httpx.AsyncClient, app: Running, backend: str
    ) -> None:
        """Every pooled connection is taken by requests: readiness still asks the database
        on its own connection, and says it is there."""
        if backend != "postgresql":
            pytest.skip("the pool settings are PostgreSQL's; SQLite's writers queue on its lock")
        engine = app.resources.engine
        size = app.resources.settings.database.pool_size
        held = [await engine.connect() for _ in range(size)]
        try:
            for conn in held:
                await conn.execute(text("SELECT 1"))
            response = await client.get("/readyz")
        finally:
            for conn in held:
                await conn.close()
        assert response.status_code == 200, response.text
        assert response.json()["checks"]["database"] == "ok"


async def test_a_database_answering_with_an_error_is_not_ready_never_a_500(
    settings: Settings, clock: FakeClock, database_url: str, backend: str, tmp_path: Path
) -> None:
    """A database that does not exist, or a file that is not one: 503 with the cause."""
    if backend == "postgresql":
        broken = f"{database_url.rsplit('/', 1)[0]}/session_service_missing_{uuid.uuid4().hex[:8]}"
    else:
        junk = tmp_path / "junk.db"
        junk.write_bytes(b"this is not a database\n" * 256)
        broken = f"sqlite+aiosqlite:///{junk}"
    app = create_app(settings.with_overrides(database_url=broken), clock=clock)
    async with running(app) as started:
        transport = httpx.ASGITransport(app=started)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.get("/readyz")
    body = assert_problem(response, 503, "not_ready")
    assert body["checks"]["database"].startswith("unavailable: ")
