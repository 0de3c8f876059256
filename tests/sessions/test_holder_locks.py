"""Holder routes lock their session in the request's own transaction (PostgreSQL).

A change that is under way on the same session (a reset, new details, an erasure) holds
the row lock here, taken by a separate connection as another request would; an upload slot
asked for meanwhile waits for it and then answers from what was committed: 409
`token_replaced` when the token it sent was replaced meanwhile (a reset, details given),
401 when the session is gone; never a 500 and never a file row of a session that was reset
or erased first.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from session_service.core.ids import token_digest
from tests.files.helpers import PDF
from tests.helpers import Running, assert_problem, create_session, holder, rows

SLOT = {"name": "a.pdf", "content_type": "application/pdf", "size": len(PDF)}


@pytest.fixture
async def other_connection(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of its own, standing in for another request's transaction."""
    if not database_url.startswith("postgresql"):
        pytest.skip("row locks are PostgreSQL's; SQLite serialises every write transaction")
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        yield conn
    finally:
        await conn.close()


async def _wait_until_blocked(conn: asyncpg.Connection) -> None:
    """Until some other backend waits on a lock (the slot request behind the change)."""
    for _ in range(200):
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        if waiting:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the slot request never waited for the session's lock")


# What a reset does to the old session: its token is buried, the row keeps none.
RESET = (
    "INSERT INTO session_tombstones (digest, ended_at, reason)"
    " SELECT token_digest, now(), 'reset' FROM sessions WHERE id = $1",
    "UPDATE sessions SET status = 'reset', token_digest = NULL WHERE id = $1",
)


async def _slot_during(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    session: dict[str, str],
    *change: str,
) -> httpx.Response:
    """Ask for a slot while `change` (SQL on the session row, by id) is in flight, then commit."""
    async with conn.transaction():
        for statement in change:
            await conn.execute(statement, uuid.UUID(session["id"]))
        slot = asyncio.create_task(
            client.post("/api/v1/session/uploads", json=SLOT, headers=holder(session))
        )
        await _wait_until_blocked(conn)
    return await asyncio.wait_for(slot, 10)


class TestSlotRacesAChange:
    async def test_a_reset_committed_first_refuses_the_slot(
        self, client: httpx.AsyncClient, app: Running, other_connection: asyncpg.Connection
    ) -> None:
        session = await create_session(client)
        response = await _slot_during(client, other_connection, session, *RESET)
        assert_problem(response, 409, "token_replaced")
        assert await rows(app, "SELECT id FROM files") == []
        # Asked again with the same token, the slot is told the session was reset.
        again = await client.post("/api/v1/session/uploads", json=SLOT, headers=holder(session))
        assert assert_problem(again, 401, "session_invalid")["reason"] == "reset"
        assert await rows(app, "SELECT id FROM files") == []

    async def test_details_committed_first_refuse_the_slot_for_the_old_token(
        self, client: httpx.AsyncClient, app: Running, other_connection: asyncpg.Connection
    ) -> None:
        session = await create_session(client)
        new_token = uuid.uuid4()
        rotate = (
            "INSERT INTO session_tombstones (digest, ended_at, reason)"
            " SELECT token_digest, now(), 'rotated' FROM sessions WHERE id = $1",
            f"UPDATE sessions SET token_digest = '{token_digest(new_token)}' WHERE id = $1",
        )
        response = await _slot_during(client, other_connection, session, *rotate)
        assert_problem(response, 409, "token_replaced")
        assert await rows(app, "SELECT id FROM files") == []
        again = await client.post("/api/v1/session/uploads", json=SLOT, headers=holder(session))
        assert assert_problem(again, 401, "session_invalid")["reason"] == "rotated"
        fresh = await client.post(
            "/api/v1/session/uploads", json=SLOT, headers=holder(str(new_token))
        )
        assert fresh.status_code == 201, fresh.text

    async def test_an_erasure_committed_first_refuses_the_slot(
        self, client: httpx.AsyncClient, app: Running, other_connection: asyncpg.Connection
    ) -> None:
        session = await create_session(client)
        response = await _slot_during(
            client, other_connection, session, "DELETE FROM sessions WHERE id = $1"
        )
        body = assert_problem(response, 401, "session_invalid")
        assert body["reason"] == "not_found"
        assert await rows(app, "SELECT id FROM files") == []


class TestConcurrentRequests:
    async def test_slots_racing_resets_and_erasures_end_cleanly(
        self, client: httpx.AsyncClient, app: Running, other_connection: asyncpg.Connection
    ) -> None:
        for round_ in range(12):
            session = await create_session(client)
            headers = holder(session)
            ending = (
                client.post("/api/v1/session/reset", json={"reason": "tampered"}, headers=headers)
                if round_ % 2
                else client.delete("/api/v1/session", headers=headers)
            )
            slot, end = await asyncio.gather(
                client.post("/api/v1/session/uploads", json=SLOT, headers=headers), ending
            )
            # 409 token_replaced: the slot waited for a reset that replaced its token.
            assert slot.status_code in (201, 401, 409), slot.text
            if slot.status_code == 409:
                assert round_ % 2, slot.text  # an erasure replaces nothing
                assert_problem(slot, 409, "token_replaced")
            assert end.status_code in (201, 204), end.text
            # A slot that was issued came before the change, never after it.
            events = await rows(
                app,
                "SELECT id, type FROM audit_events WHERE session_id = :sid ORDER BY id",
                sid=uuid.UUID(session["id"]),
            )
            types = [event["type"] for event in events]
            if slot.status_code == 201:
                assert types.index("file.slot_issued") < len(types) - 1
                assert types[-1] in ("session.superseded", "session.erased")
            else:
                assert "file.slot_issued" not in types
