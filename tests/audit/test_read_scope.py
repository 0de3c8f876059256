"""Long reads (audit verify) see one snapshot and do not hold writers up, on both databases.

SQLite's write transactions take the write lock up front (`BEGIN IMMEDIATE`); a verify in
one held it for its whole run, and every create and validate waited behind it.
"""

from __future__ import annotations

import httpx
from sqlalchemy import text

from session_service.core.db import read_scope
from tests.helpers import Running, count_sessions, create_session

COUNT = text("SELECT count(*) FROM sessions")


async def test_writers_go_on_while_a_read_scope_is_open(
    client: httpx.AsyncClient, app: Running
) -> None:
    await create_session(client)
    async with read_scope(app.resources.sessionmaker) as db:
        seen: int = (await db.execute(COUNT)).scalar_one()
        # A writer commits while the read is still open: not held up by it...
        await create_session(client)
        assert await count_sessions(app) == seen + 1
        # ...and not seen by it: every read of the scope is of one snapshot.
        assert (await db.execute(COUNT)).scalar_one() == seen
