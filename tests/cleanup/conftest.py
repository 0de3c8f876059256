"""Cleanup runs on both backends and both databases; its clock starts at the real now.

Stored objects carry the store's own (real) modification times, so the fake clock starts
from the real time and moves forward from there: ages compare as they would in service.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text

from session_service.cleanup.report import CleanupReport
from session_service.cleanup.runner import job_context
from session_service.core.clock import utc_now
from tests.conftest import FakeClock
from tests.files.conftest import moto_endpoint, settings, store_backend  # noqa: F401  (fixtures)
from tests.files.helpers import request_slot
from tests.helpers import Running
from tests.notify.conftest import webhook_server  # noqa: F401  (fixture)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=utc_now())


async def run_cleanup(
    app: Running, *, dry_run: bool = False, full_sweep: bool = False
) -> CleanupReport:
    """One run now; `full_sweep`: list all of storage for orphans in it, due or not."""
    report = await app.resources.cleanup.run_once(
        dry_run=dry_run, full_sweep=full_sweep, ctx=job_context()
    )
    assert report is not None
    return report


async def object_keys(app: Running) -> set[str]:
    """Every object of files: checked ones (`uploads/`) and those in quarantine (`incoming/`)."""
    store = app.resources.store
    return {
        info.key for prefix in ("uploads/", "incoming/") async for info in store.list_prefix(prefix)
    }


async def queued(app: Running) -> list[str]:
    """The targets in the deletion queue, in order."""
    async with app.resources.engine.connect() as conn:
        rows = await conn.execute(text("SELECT target FROM deletion_queue ORDER BY id"))
        return [row.target for row in rows]


async def pending_upload(
    client: httpx.AsyncClient, session: dict[str, Any] | str
) -> dict[str, Any]:
    """A slot, as the holder of `session` (its answer, or its token), never completed."""
    created = await request_slot(client, session)
    assert created.status_code == 201, created.text
    data: dict[str, Any] = created.json()
    return data
