"""With the object store unreachable: clear 503s, and nothing in the database changes."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from session_service.app import create_app
from session_service.core.settings import Settings
from tests import moto_server
from tests.conftest import FakeClock, service_log_lines
from tests.files.helpers import file_rows, request_slot, upload_file
from tests.helpers import Running, assert_problem, create_session, holder, running


@pytest.fixture
def store_backend() -> str:
    return "s3"


async def _client_for(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running(app) as started:
        transport = httpx.ASGITransport(app=started)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


@pytest.fixture
def down_app(settings: Settings, clock: FakeClock) -> FastAPI:
    """The same database and bucket name, but the S3 endpoint is a closed port."""
    closed = f"http://127.0.0.1:{moto_server.free_port()}"
    update = {"s3_endpoint_url": closed, "s3_max_attempts": 0, "s3_connect_timeout": 1.0}
    return create_app(settings.with_overrides(**update), clock=clock)


class TestStorageDown:
    async def test_completion_and_readiness_answer_503_and_change_nothing(
        self, client: httpx.AsyncClient, app: Running, down_app: FastAPI
    ) -> None:
        session = await create_session(client)
        pending = (await request_slot(client, session)).json()["file"]
        before = await file_rows(app)
        async for down in _client_for(down_app):
            complete = await down.post(
                f"/api/v1/session/files/{pending['id']}/complete", headers=holder(session)
            )
            assert_problem(complete, 503, "storage_unavailable")
            ready = await down.get("/readyz")
            checks = assert_problem(ready, 503, "not_ready")["checks"]
            assert checks["database"] == "ok"
            assert checks["storage"].startswith("unavailable")
        assert await file_rows(app) == before

    async def test_a_delete_commits_and_leaves_the_object_to_the_orphan_sweep(
        self, client: httpx.AsyncClient, app: Running, down_app: FastAPI, json_log: io.StringIO
    ) -> None:
        """Storage is called after the commit: the file is gone for its holder either way."""
        session = await create_session(client)
        uploaded = await upload_file(client, session)
        async for down in _client_for(down_app):
            delete = await down.delete(
                f"/api/v1/session/files/{uploaded['id']}", headers=holder(session)
            )
            assert delete.status_code == 204, delete.text
        assert await file_rows(app) == []
        [left] = [
            line
            for line in service_log_lines(json_log)
            if line["event"] == "objects_left_for_cleanup"
        ]
        assert left["level"] == "warning"
        stored = [info.key async for info in app.resources.store.list_prefix("uploads/")]
        assert len(stored) == 1  # an orphan now: the sweep takes it once old enough

    async def test_the_local_endpoints_do_not_exist_on_s3(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.post("/api/v1/storage/uploads"), 404, "not_found")
        token = "x" * 20
        assert_problem(await client.get(f"/api/v1/storage/downloads/{token}"), 404, "not_found")
