"""On PostgreSQL the database itself refuses to change or remove audit events."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.helpers import Running, audit_events, create_session


@pytest.fixture(autouse=True)
def _postgres_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("the database-level guard is PostgreSQL's (SQLite has no session settings)")


async def _run(app: Running, *statements: str) -> None:
    async with app.resources.engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))


PURGE_SWITCH = "SET LOCAL session_service.audit_purge = 'on'"


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET details = '{\"forged\": true}'",
        "UPDATE audit_events SET type = 'session.nothing'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ],
)
async def test_plain_changes_are_refused(
    client: httpx.AsyncClient, app: Running, statement: str
) -> None:
    await create_session(client)
    before = await audit_events(app)
    with pytest.raises(DBAPIError, match="append-only"):
        await _run(app, statement)
    assert await audit_events(app) == before


async def test_the_purge_switch_allows_deletes_but_never_updates(
    client: httpx.AsyncClient, app: Running
) -> None:
    await create_session(client)
    with pytest.raises(DBAPIError, match="append-only"):
        await _run(app, PURGE_SWITCH, "UPDATE audit_events SET type = 'x'")
    await _run(app, PURGE_SWITCH, "DELETE FROM audit_events")
    assert await audit_events(app) == []
