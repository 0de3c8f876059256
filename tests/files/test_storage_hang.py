"""A hung object store never takes down the routes that do not use it.

Erasure, completion and file delete talk to storage only after their unit of work has
committed, holding no pooled connection. Here the S3 server is frozen (SIGSTOP) while more
of those requests are in flight than the pool has connections: creating and validating
sessions go on answering, and once storage is back every request has its answer and every
change exactly one event.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests import moto_server
from tests.files.helpers import PDF, post_form, request_slot, upload_file
from tests.helpers import Running, audit_events, create_session, holder, validate, verify

IN_FLIGHT = 4  # of each kind: 12 requests waiting on storage, against a pool of 3


@pytest.fixture(scope="module")
def moto_server_process() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """An S3 server of this module's own, so pausing it pauses nobody else's."""
    with moto_server.separate_server() as server:
        yield server


@pytest.fixture(scope="module")
def moto_endpoint(moto_server_process: tuple[str, subprocess.Popen[bytes]]) -> str:
    return moto_server_process[0]


@pytest.fixture
def store_backend() -> str:
    return "s3"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {
        "database_pool_size": 3,
        "database_max_overflow": 0,
        "database_pool_timeout": 2.0,
        "s3_read_timeout": 4.0,
        "s3_max_attempts": 1,
    }


async def _posted_not_completed(client: httpx.AsyncClient) -> tuple[dict[str, Any], str]:
    session = await create_session(client)
    slot = (await request_slot(client, session)).json()
    assert (await post_form(client, slot["upload"], PDF)).status_code in (200, 201, 204)
    return session, f"/api/v1/session/files/{slot['file']['id']}/complete"


async def test_requests_waiting_on_storage_hold_no_connection(
    client: httpx.AsyncClient,
    app: Running,
    moto_server_process: tuple[str, subprocess.Popen[bytes]],
) -> None:
    to_erase = [await create_session(client) for _ in range(IN_FLIGHT)]
    for session in to_erase:
        await upload_file(client, session)
    to_complete = [await _posted_not_completed(client) for _ in range(IN_FLIGHT)]
    to_delete = []
    for _ in range(IN_FLIGHT):
        session = await create_session(client)
        to_delete.append((session, await upload_file(client, session)))
    waiting: list[asyncio.Task[httpx.Response]] = []
    process = moto_server_process[1]
    os.kill(process.pid, signal.SIGSTOP)
    try:
        for session in to_erase:
            waiting.append(
                asyncio.create_task(client.delete("/api/v1/session", headers=holder(session)))
            )
        for session, complete in to_complete:
            waiting.append(asyncio.create_task(client.post(complete, headers=holder(session))))
        for session, file in to_delete:
            path = f"/api/v1/session/files/{file['id']}"
            waiting.append(asyncio.create_task(client.delete(path, headers=holder(session))))
        await asyncio.sleep(0.5)  # every one of them is waiting on storage by now
        assert not any(task.done() for task in waiting)

        created = [await client.post("/api/v1/sessions") for _ in range(6)]
        assert [response.status_code for response in created] == [201] * 6
        for response in created:
            assert (await validate(client, response.json()["token"]))["valid"] is True
    finally:
        os.kill(process.pid, signal.SIGCONT)
    answers = await asyncio.gather(*waiting)

    statuses = [response.status_code for response in answers]
    erased, completed, deleted = (
        statuses[:IN_FLIGHT],
        statuses[IN_FLIGHT : 2 * IN_FLIGHT],
        statuses[2 * IN_FLIGHT :],
    )
    # Storage may have timed out meanwhile: erasure then says so, completion asks again.
    assert set(erased) <= {204, 202}, erased
    assert set(completed) <= {200, 503}, completed
    assert deleted == [204] * IN_FLIGHT
    events = Counter(event["type"] for event in await audit_events(app))
    assert events["session.erased"] == IN_FLIGHT
    assert events["file.deleted"] == IN_FLIGHT
    assert events["file.uploaded"] == 2 * IN_FLIGHT + completed.count(200)
    await app.resources.sealer.seal()
    assert (await verify(app)).ok
