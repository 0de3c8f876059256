"""An admin's cleanup run is a job: started and answered at once, its progress read after."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from session_service.cleanup.schemas import CleanupReportRead, CleanupStarted
from session_service.core.locks import LockKey, advisory_lock_for_run
from session_service.core.settings import Settings
from session_service.storage.base import ObjectInfo, ObjectStore
from tests.cleanup.test_orphans import ref, stray_key
from tests.conftest import FakeClock
from tests.files.helpers import PDF, put_directly
from tests.helpers import Running, assert_problem

ADMIN = {"Authorization": "Bearer admin-key"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_overrides(admin_api_keys=["admin-key"])


class PausedListing:
    """The real store, except that listing waits until the test lets it go on."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.reached = asyncio.Event()
        self.go_on = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def list_prefix(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        self.reached.set()
        await self.go_on.wait()
        async for info in self.store.list_prefix(prefix):
            yield info


async def _orphan(app: Running, clock: FakeClock) -> str:
    """An object no session refers to, old enough for cleanup to take."""
    stray = stray_key()
    await put_directly(app, stray, PDF, "application/pdf")
    clock.advance(timedelta(minutes=11))
    return stray


async def _status(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    answer = await client.get(url, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_started_at_once_then_followed_to_its_end(
    client: httpx.AsyncClient, app: Running, clock: FakeClock
) -> None:
    stray = await _orphan(app, clock)
    paused = PausedListing(app.resources.store)
    app.resources.cleanup.job.store = paused

    started = await client.post("/api/v1/admin/cleanup?full_sweep=true", headers=ADMIN)
    assert started.status_code == 202, started.text
    body = started.json()
    CleanupStarted.model_validate(body)  # what openapi.json declares
    assert body["status"] == "running"
    assert started.headers["Location"] == body["status_url"]
    assert body["status_url"] == f"/api/v1/admin/cleanup/{body['run_id']}"

    await asyncio.wait_for(paused.reached.wait(), 10)
    running = await _status(client, body["status_url"])
    assert running["status"] == "running"
    assert running["report"]["step"] == "orphaned_objects"
    assert running["report"]["finished_at"] is None
    # Another run meanwhile, from here or anywhere, is refused.
    again = await client.post("/api/v1/admin/cleanup", headers=ADMIN)
    assert_problem(again, 409, "cleanup_running")

    paused.go_on.set()
    for _ in range(200):
        finished = await _status(client, body["status_url"])
        if finished["status"] != "running":
            break
        await asyncio.sleep(0.05)
    assert finished["status"] == "finished"
    assert finished["report"]["step"] is None
    assert finished["report"]["orphaned_objects"]["items"] == [ref(stray)]
    assert finished["report"]["finished_at"] is not None


async def test_waiting_answers_with_the_report(
    client: httpx.AsyncClient, app: Running, clock: FakeClock
) -> None:
    stray = await _orphan(app, clock)
    answer = await client.post(
        "/api/v1/admin/cleanup?wait=true&dry_run=true&full_sweep=true", headers=ADMIN
    )
    assert answer.status_code == 200
    CleanupReportRead.model_validate(answer.json())  # what openapi.json declares
    assert answer.json()["orphaned_objects"]["items"] == [ref(stray)]


async def test_a_run_elsewhere_is_409_and_an_unknown_run_404(
    client: httpx.AsyncClient, app: Running
) -> None:
    async with advisory_lock_for_run(app.resources.engine, LockKey.CLEANUP) as acquired:
        assert acquired
        refused = await client.post("/api/v1/admin/cleanup", headers=ADMIN)
    assert_problem(refused, 409, "cleanup_running")
    unknown = await client.get("/api/v1/admin/cleanup/0123abcd", headers=ADMIN)
    assert_problem(unknown, 404, "cleanup_run_not_found")
    assert_problem(await client.get("/api/v1/admin/cleanup/0123abcd"), 401, "unauthorized")
