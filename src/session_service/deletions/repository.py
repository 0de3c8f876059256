"""SQL of the deletion queue: rows added in the caller's unit of work, taken a batch at a time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from session_service.core.sqltypes import table_of
from session_service.deletions.models import QueuedDeletion
from session_service.deletions.targets import Deletion

_queue = table_of(QueuedDeletion)
_ADD = insert(_queue).returning(_queue.c.id)


class Queued(NamedTuple):
    """A row of the queue: its id and what it names."""

    id: int
    target: str


class DeletionRepository:
    """The deletion queue, in the caller's unit of work."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add(self, deletions: Sequence[Deletion], *, now: datetime) -> list[int]:
        """Queue these deletions; the new rows' ids."""
        if not deletions:
            return []
        rows = [
            {"target": item.target, "due_at": item.due_at, "created_at": now} for item in deletions
        ]
        return list((await self.db.execute(_ADD, rows)).scalars())

    async def due(self, *, now: datetime, after: int, limit: int) -> list[Queued]:
        """Rows due at `now` with an id above `after`, oldest first (keyset)."""
        query = (
            select(_queue.c.id, _queue.c.target)
            .where(_queue.c.id > after, _queue.c.due_at <= now)
            .order_by(_queue.c.id)
            .limit(limit)
        )
        return [Queued(row.id, row.target) for row in await self.db.execute(query)]

    async def remove(self, ids: Sequence[int]) -> None:
        """Forget these rows: their deletions were made, or are not to be made."""
        if ids:
            await self.db.execute(
                delete(_queue).where(_queue.c.id.in_(bindparam("ids", expanding=True))),
                {"ids": list(ids)},
            )

    async def settle(self, ids: Sequence[int], *, now: datetime) -> None:
        """Forget those of these rows that were due at `now`, when their deletion succeeded.

        A row not due yet stays: a form may still write to its key.
        """
        if ids:
            await self.db.execute(
                delete(_queue).where(
                    _queue.c.id.in_(bindparam("ids", expanding=True)), _queue.c.due_at <= now
                ),
                {"ids": list(ids)},
            )
