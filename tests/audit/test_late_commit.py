"""A transaction that commits late never breaks the chain.

PostgreSQL draws an event's id at insert, not at commit: a unit of work that records an
event and then waits (on a slow remote call, a stalled client) commits an id below events
other requests committed meanwhile, while the sealer runs. Sealing by id range sealed past
the late event, which `audit verify` then reported as inserted, for good.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from session_service.audit.events import EventType
from session_service.cleanup.runner import job_context
from session_service.core.db import job_scope
from tests.helpers import Running, audit_events, create_session, verify


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"audit_seal_min_age": 0}


async def test_an_event_committed_late_is_sealed_in_order(
    client: httpx.AsyncClient, app: Running, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite serialises writers: nothing commits while a writer is open")
    await create_session(client)
    recorded, release = asyncio.Event(), asyncio.Event()

    async def late_writer() -> None:
        async with job_scope(app.resources.sessionmaker) as db:
            await app.resources.audit.record(
                EventType.CLEANUP_COMPLETED, db=db, ctx=job_context(), details={"late": True}
            )
            recorded.set()
            await release.wait()  # held open, as by a slow call inside the transaction

    writer = asyncio.create_task(late_writer())
    await asyncio.wait_for(recorded.wait(), 10)
    # Meanwhile other visitors arrive (higher ids, committed first) and the sealer runs.
    for _ in range(4):
        await create_session(client)
        await app.resources.sealer.seal()
    release.set()
    await writer

    await app.resources.sealer.seal()
    report = await verify(app)
    assert report.ok, report.problems
    assert report.unsealed_events == 0
    assert report.events == len(await audit_events(app))
