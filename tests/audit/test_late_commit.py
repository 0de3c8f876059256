"""A transaction that commits late never breaks the chain.

A file delete records `file.deleted` and then calls storage in the same transaction; with
storage slow, later requests draw higher ids and commit first, and the sealer runs
meanwhile. Sealing by id range sealed past the late event, which `audit verify` then
reported as inserted, for good.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from session_service.storage.base import ObjectStore
from tests.files.helpers import upload_file
from tests.helpers import Running, audit_events, create_session, holder, verify

HOLD_SECONDS = 3.0


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"audit_seal_min_age": 0}


class SlowDeletes:
    """The real store, except that deletions wait for storage that is slow to answer."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.started = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def delete_many(self, keys: Sequence[str]) -> None:
        self.started.set()
        await asyncio.sleep(HOLD_SECONDS)
        await self.store.delete_many(keys)


async def test_a_delete_held_up_by_storage_is_sealed_in_order(
    client: httpx.AsyncClient, app: Running
) -> None:
    session = await create_session(client)
    file = await upload_file(client, session)
    slow = SlowDeletes(app.resources.store)
    app.resources.files.store = slow

    deleting = asyncio.create_task(
        client.delete(f"/api/v1/session/files/{file['id']}", headers=holder(session))
    )
    await asyncio.wait_for(slow.started.wait(), 10)
    # Meanwhile other visitors arrive, and the sealer runs.
    for _ in range(4):
        await create_session(client)
        await app.resources.sealer.seal()
        await asyncio.sleep(0.2)
    assert (await deleting).status_code == 204

    await app.resources.sealer.seal()
    report = await verify(app)
    assert report.ok, report.problems
    assert report.unsealed_events == 0
    assert "file.deleted" in [event["type"] for event in await audit_events(app)]
    assert report.events == len(await audit_events(app))
