"""SQL of the hash chain: batches, anchors and the events they cover; nothing else builds it.

Used by the sealer, `verify_chain` and the retention purge, always inside the caller's
unit of work (the sealer's lock is `core/locks.try_advisory_lock` in that same one).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import bindparam, delete, func, insert, select, text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from session_service.audit.models import AuditAnchor, AuditBatch, AuditEvent
from session_service.core.db import is_postgres
from session_service.core.sqltypes import table_of

_events = table_of(AuditEvent)
_batches = table_of(AuditBatch)
_anchors = table_of(AuditAnchor)

_LATEST_BATCH = select(_batches).order_by(_batches.c.id.desc()).limit(1)
_LATEST_ANCHOR = select(_anchors).order_by(_anchors.c.id.desc()).limit(1)
_EVENTS_AFTER = (
    select(_events)
    .where(_events.c.id > bindparam("after"))
    .order_by(_events.c.id)
    .limit(bindparam("limit"))
)
_EVENTS_IN_RANGE = (
    select(_events)
    .where(_events.c.id > bindparam("after"), _events.c.id <= bindparam("through"))
    .order_by(_events.c.id)
)
_ALL_BATCHES = select(_batches).order_by(_batches.c.id)
_OLDEST_BATCHES = (
    select(_batches.c.id, _batches.c.last_event_id, _batches.c.digest)
    .order_by(_batches.c.id)
    .limit(bindparam("limit"))
)
_AT_OR_BELOW = select(func.count(), func.min(_events.c.id), func.max(_events.c.id)).where(
    _events.c.id <= bindparam("through")
)
_COUNT_AFTER = select(func.count()).select_from(_events).where(_events.c.id > bindparam("after"))


class AuditChainRepository:
    """The chain's rows, in the caller's unit of work."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def latest_batch(self) -> RowMapping | None:
        """The newest sealed batch, or None."""
        return (await self.db.execute(_LATEST_BATCH)).mappings().first()

    async def latest_anchor(self) -> RowMapping | None:
        """The newest anchor (purges only move forward), or None if nothing was purged."""
        return (await self.db.execute(_LATEST_ANCHOR)).mappings().first()

    async def events_after(self, after: int, *, limit: int) -> Sequence[RowMapping]:
        """Up to `limit` events with ids above `after`, in id order."""
        params = {"after": after, "limit": limit}
        return (await self.db.execute(_EVENTS_AFTER, params)).mappings().all()

    async def events_between(self, after: int, through: int) -> Sequence[RowMapping]:
        """Events with `after < id <= through`, in id order."""
        params = {"after": after, "through": through}
        return (await self.db.execute(_EVENTS_IN_RANGE, params)).mappings().all()

    async def add_batch(self, values: dict[str, Any]) -> None:
        """Store a sealed batch."""
        await self.db.execute(insert(_batches), values)

    async def batches(self) -> Sequence[RowMapping]:
        """Every batch, oldest first."""
        return (await self.db.execute(_ALL_BATCHES)).mappings().all()

    async def oldest_batches(self, *, limit: int) -> Sequence[Any]:
        """Id, last event id and digest of the oldest `limit` batches."""
        return (await self.db.execute(_OLDEST_BATCHES, {"limit": limit})).all()

    async def events_at_or_below(self, through: int) -> tuple[int, int | None, int | None]:
        """How many events have ids up to `through`, and the lowest and highest of them."""
        row = (await self.db.execute(_AT_OR_BELOW, {"through": through})).one()
        return int(row[0]), row[1], row[2]

    async def count_after(self, after: int) -> int:
        """How many events have ids above `after` (not sealed yet)."""
        return int(await self.db.scalar(_COUNT_AFTER, {"after": after}) or 0)

    async def range_age(self, *, after: int | None, through: int) -> tuple[datetime | None, int]:
        """The newest `occurred_at` and the count of events with `after < id <= through`."""
        in_range = _events.c.id <= through
        if after is not None:
            in_range = in_range & (_events.c.id > after)
        stmt = select(func.max(_events.c.occurred_at), func.count()).where(in_range)
        row = (await self.db.execute(stmt)).one()
        return cast("datetime | None", row[0]), int(row[1])

    async def purge_through(self, *, last_event_id: int, last_batch_id: int) -> None:
        """Delete events and batches up to these ids (PostgreSQL: past the append-only guard)."""
        if is_postgres(self.db):
            await self.db.execute(text("SET LOCAL session_service.audit_purge = 'on'"))
        await self.db.execute(delete(_events).where(_events.c.id <= last_event_id))
        await self.db.execute(delete(_batches).where(_batches.c.id <= last_batch_id))

    async def add_anchor(self, values: dict[str, Any]) -> None:
        """Record where the chain resumes after a purge."""
        await self.db.execute(insert(_anchors), values)
