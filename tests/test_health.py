"""Liveness, readiness and the documentation endpoints."""

from __future__ import annotations

import httpx


class TestOperations:
    async def test_healthz(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    async def test_readyz_checks_the_database(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/readyz")
        assert response.status_code == 200
        assert response.json() == {
            "status": "ready",
            "checks": {"database": "ok", "storage": "ok"},
        }

    async def test_docs_redoc_and_openapi_are_served(self, client: httpx.AsyncClient) -> None:
        assert "swagger-ui" in (await client.get("/docs")).text
        assert "redoc" in (await client.get("/redoc")).text.lower()
        document = (await client.get("/openapi.json")).json()
        assert "/api/v1/session/validate" in document["paths"]
