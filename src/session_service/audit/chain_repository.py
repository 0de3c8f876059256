"""SQL of the hash chain: batches, anchors and the events they cover; nothing else builds it.

Used by the sealer, `verify_chain` and the retention purge, always inside the caller's
unit of work (the sealer's lock is `core/locks.try_advisory_lock` in that same one).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, bindparam, delete, func, insert, select, text
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
_ALL_BATCHES = select(_batches).order_by(_batches.c.id)
_OLDEST_BATCHES = (
    select(_batches.c.id, _batches.c.last_event_id, _batches.c.covers_below, _batches.c.digest)
    .order_by(_batches.c.id)
    .limit(bindparam("limit"))
)
# Every transaction older than this one has ended (committed or rolled back): no event can
# ever appear with a smaller txid.
_PG_HORIZON = text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
# SQLite: the sealer's transaction holds the write lock, so every written event is visible.
_SQLITE_HORIZON = select(func.coalesce(func.max(_events.c.id), 0) + 1)


def chain_key(db: AsyncSession) -> ColumnElement[int]:
    """What orders events in the chain and what batches cover ranges of.

    PostgreSQL: the writing transaction's id (`txid`), since ids are drawn at insert, not
    at commit, and a late commit would leave an id below events already sealed. SQLite:
    the id, as its transactions are serialised (`BEGIN IMMEDIATE`) and draw ids in commit
    order.
    """
    return _events.c.txid if is_postgres(db) else _events.c.id


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

    def key_of(self, event: RowMapping) -> int:
        """An event's chain key (see `chain_key`)."""
        return int(event["txid"] if is_postgres(self.db) else event["id"])

    async def horizon(self) -> int:
        """Every event with a key below this is committed, and no other ever will be."""
        stmt = _PG_HORIZON if is_postgres(self.db) else _SQLITE_HORIZON
        return int(await self.db.scalar(stmt) or 0)

    async def events_covered(
        self, start: int | None, below: int, *, limit: int | None = None
    ) -> Sequence[RowMapping]:
        """Events with keys in [start, below) (no lower bound if None), in chain order."""
        key = chain_key(self.db)
        stmt = select(_events).where(key < below).order_by(key, _events.c.id)
        if start is not None:
            stmt = stmt.where(key >= start)
        if limit is not None:
            stmt = stmt.limit(limit)
        return (await self.db.execute(stmt)).mappings().all()

    async def add_batch(self, values: dict[str, Any]) -> None:
        """Store a sealed batch."""
        await self.db.execute(insert(_batches), values)

    async def batches(self) -> Sequence[RowMapping]:
        """Every batch, oldest first."""
        return (await self.db.execute(_ALL_BATCHES)).mappings().all()

    async def oldest_batches(self, *, limit: int) -> Sequence[Any]:
        """Id, last event id and digest of the oldest `limit` batches."""
        return (await self.db.execute(_OLDEST_BATCHES, {"limit": limit})).all()

    async def events_below(self, below: int) -> tuple[int, int | None, int | None]:
        """How many events have keys below `below`, and the lowest and highest of their ids."""
        stmt = select(func.count(), func.min(_events.c.id), func.max(_events.c.id)).where(
            chain_key(self.db) < below
        )
        row = (await self.db.execute(stmt)).one()
        return int(row[0]), row[1], row[2]

    async def count_from(self, start: int | None) -> int:
        """How many events have keys from `start` on (not sealed yet)."""
        stmt = select(func.count()).select_from(_events)
        if start is not None:
            stmt = stmt.where(chain_key(self.db) >= start)
        return int(await self.db.scalar(stmt) or 0)

    async def range_age(self, *, start: int | None, below: int) -> tuple[datetime | None, int]:
        """The newest `occurred_at` and the count of events with keys in [start, below)."""
        key = chain_key(self.db)
        in_range = key < below
        if start is not None:
            in_range = in_range & (key >= start)
        stmt = select(func.max(_events.c.occurred_at), func.count()).where(in_range)
        row = (await self.db.execute(stmt)).one()
        return cast("datetime | None", row[0]), int(row[1])

    async def purge_below(self, *, covers_below: int, last_batch_id: int) -> None:
        """Delete the events a purged run of batches covered, and those batches.

        PostgreSQL: past the append-only guard.
        """
        if is_postgres(self.db):
            await self.db.execute(text("SET LOCAL session_service.audit_purge = 'on'"))
        await self.db.execute(delete(_events).where(chain_key(self.db) < covers_below))
        await self.db.execute(delete(_batches).where(_batches.c.id <= last_batch_id))

    async def add_anchor(self, values: dict[str, Any]) -> None:
        """Record where the chain resumes after a purge."""
        await self.db.execute(insert(_anchors), values)
