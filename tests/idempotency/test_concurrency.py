"""Duplicates sent at once under one key run once: one session, slot or message; every answer
the same."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import httpx
import pytest

from tests.helpers import Running
from tests.idempotency.conftest import Target, idempotency_rows, new_key

DUPLICATES = 4
# What the operation's first request blocks on while the others queue behind it.
TABLE_OF = {
    "sessions-create": "sessions",
    "sessions-reset": "sessions",
    "files-create-upload": "files",
    "conversations-create": "conversations",
    "conversations-send-message": "messages",
    "service-add-message": "messages",
}


@asynccontextmanager
async def table_held(database_url: str, table: str) -> AsyncIterator[asyncpg.Connection]:
    """`table` locked against writes (reads go on) until the block ends."""
    conn = await asyncpg.connect(database_url.replace("+asyncpg", "", 1))
    try:
        async with conn.transaction():
            await conn.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
            yield conn
    finally:
        await conn.close()


async def until_waiting(conn: asyncpg.Connection, count: int) -> None:
    """Until `count` of the app's connections wait for a lock (the table's or a key's)."""
    for _ in range(500):
        # Inside a transaction, activity statistics are read once unless cleared.
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND datname = current_database() AND pid <> pg_backend_pid()"
        )
        if waiting >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {count} requests ever waited at once")


def assert_one_answer(answers: list[httpx.Response]) -> None:
    """Every answer is the first one: one ran, the others are its replays."""
    statuses = {answer.status_code for answer in answers}
    assert statuses <= {200, 201}, [answer.text for answer in answers]
    assert len(statuses) == 1
    assert len({answer.content for answer in answers}) == 1
    replayed = [answer.headers.get("idempotent-replayed") for answer in answers]
    assert sorted(replayed, key=str) == [None] + ["true"] * (len(answers) - 1)


async def test_duplicates_in_flight_together_run_once_on_postgresql(
    client: httpx.AsyncClient, app: Running, target: Target, backend: str, database_url: str
) -> None:
    """The first request is held inside its transaction (after its claim) until every
    duplicate waits behind it: for the key itself (create, reset), or for the session's lock
    the first holds (the holder's and the service's routes)."""
    if backend != "postgresql":
        pytest.skip("row and table locks that others wait for are PostgreSQL's")
    key = new_key()
    before = await target.traces(app)
    async with table_held(database_url, TABLE_OF[target.operation]) as conn:
        sent = [asyncio.create_task(target.send(client, key)) for _ in range(DUPLICATES)]
        await until_waiting(conn, DUPLICATES)
        assert not any(task.done() for task in sent)
    answers = await asyncio.wait_for(asyncio.gather(*sent), 30)

    assert_one_answer(answers)
    written, events = await target.traces(app)
    assert (written, events) == (before[0] + 1, before[1] + 1)
    assert len(await idempotency_rows(app)) == 1


async def test_duplicates_sent_at_once_run_once(
    client: httpx.AsyncClient, app: Running, target: Target
) -> None:
    key = new_key()
    before = await target.traces(app)
    answers = await asyncio.gather(*(target.send(client, key) for _ in range(DUPLICATES)))
    assert_one_answer(list(answers))
    assert await target.traces(app) == (before[0] + 1, before[1] + 1)
