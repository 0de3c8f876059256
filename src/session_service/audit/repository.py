"""SQL for audit events: insert and read, never update or delete."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime

from sqlalchemy import bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from session_service.audit.models import AuditEvent
from session_service.audit.snapshot import AuditEntry, AuditEventSnapshot
from session_service.core.sqltypes import table_of

_table = table_of(AuditEvent)
# What an event is, as the service reads it: the chain's bookkeeping (`txid`) left out.
_EVENT = [column for column in _table.c if column.name != "txid"]
# Built once; executed with a parameter dict per event.
_INSERT = insert(_table).returning(_table.c.id)
_INSERT_MANY = insert(_table)


class AuditRepository:
    """Appends events within the caller's transaction."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add(self, entry: AuditEntry) -> int:
        """Insert one event and return its monotonic id (one statement, no ORM flush)."""
        event_id: int = (await self.db.execute(_INSERT, entry.values())).scalar_one()
        return event_id

    async def add_many(self, entries: list[AuditEntry]) -> None:
        """Insert many events in one executemany statement (cleanup's batches)."""
        if entries:
            await self.db.execute(_INSERT_MANY, [entry.values() for entry in entries])

    async def newest_first(
        self,
        *,
        before: int | None,
        session_id: uuid.UUID | None,
        type: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> list[AuditEventSnapshot]:
        """Events matching the filter, newest first, below the id `before` (keyset paging)."""
        stmt = select(*_EVENT).order_by(_table.c.id.desc()).limit(limit)
        if before is not None:
            stmt = stmt.where(_table.c.id < before)
        if session_id is not None:
            stmt = stmt.where(_table.c.session_id == session_id)
        if type is not None:
            stmt = stmt.where(_table.c.type == type)
        if since is not None:
            stmt = stmt.where(_table.c.occurred_at >= since)
        if until is not None:
            stmt = stmt.where(_table.c.occurred_at < until)
        return [AuditEventSnapshot(**row) for row in (await self.db.execute(stmt)).mappings()]

    async def recent(self, session_id: uuid.UUID, *, limit: int) -> list[AuditEventSnapshot]:
        """A session's latest events, newest first."""
        params = {"session_id": session_id, "limit": limit}
        result = await self.db.execute(_RECENT, params)
        return [AuditEventSnapshot(**row) for row in result.mappings()]

    async def for_session(
        self, session_id: uuid.UUID, *, batch: int
    ) -> AsyncIterator[list[AuditEventSnapshot]]:
        """A session's events, oldest first, in keyset batches (never OFFSET)."""
        after = 0
        while True:
            params = {"session_id": session_id, "after": after, "limit": batch}
            rows = (await self.db.execute(_FOR_SESSION, params)).mappings().all()
            if not rows:
                return
            yield [AuditEventSnapshot(**row) for row in rows]
            after = int(rows[-1]["id"])


_RECENT = (
    select(*_EVENT)
    .where(_table.c.session_id == bindparam("session_id"))
    .order_by(_table.c.id.desc())
    .limit(bindparam("limit"))
)

_FOR_SESSION = (
    select(*_EVENT)
    .where(_table.c.session_id == bindparam("session_id"), _table.c.id > bindparam("after"))
    .order_by(_table.c.id)
    .limit(bindparam("limit"))
)
