"""SQL of the hash chain: batches, anchors and the events they cover; nothing else builds it.

Used by the sealer, `verify_chain` and the retention purge, always inside the caller's
unit of work (the sealer's lock is `core/locks.try_advisory_lock` in that same one).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import asyncpg
from sqlalchemy import (
    ColumnElement,
    Text,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    type_coerce,
)
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
_BATCH_PAGE = select(_batches).order_by(_batches.c.id).limit(bindparam("limit"))
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

# What `chain.canonical_lines` reads: the chain key, then the event's canonical fields.
# PostgreSQL hands over text where text is what the canonical form needs, so no value is
# built in Python only to be formatted again: the session id as lower-case UUID text,
# `details` as its jsonb text (what the driver would have parsed), and `occurred_at` as
# `chain._timestamp` writes the datetime the driver would have made (for infinities, the
# driver's `datetime.max` and `datetime.min`; `chain` formats years below 1000 itself).
# Read through the driver: a million rows through SQLAlchemy's result objects cost more
# than hashing them.
_PG_CHAIN_SELECT = """
SELECT txid, id,
       CASE WHEN occurred_at = 'infinity' THEN '9999-12-31T23:59:59.999999Z'
            WHEN occurred_at = '-infinity' THEN '0001-01-01T00:00:00.000000Z'
            ELSE to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
       END,
       type, session_id::text, request_id, client_ip, user_agent, outcome, details::text
  FROM audit_events"""
_SQLITE_CHAIN_COLUMNS = (
    _events.c.id,
    _events.c.id,
    _events.c.occurred_at,
    _events.c.type,
    _events.c.session_id,
    _events.c.request_id,
    _events.c.client_ip,
    _events.c.user_agent,
    _events.c.outcome,
    type_coerce(_events.c.details, Text),
)


def _pg_chain_rows(
    start: int | None, below: int | None, after: tuple[int, int] | None, limit: int | None
) -> tuple[str, list[int]]:
    """`_PG_CHAIN_SELECT` over a key range in chain order, and its arguments."""
    conditions: list[str] = []
    arguments: list[int] = []
    for condition, values in (
        ("txid >= ${}", () if start is None else (start,)),
        ("txid < ${}", () if below is None else (below,)),
        ("(txid, id) > (${}, ${})", after or ()),
    ):
        if values:
            numbers = range(len(arguments) + 1, len(arguments) + len(values) + 1)
            conditions.append(condition.format(*numbers))
            arguments.extend(values)
    query = _PG_CHAIN_SELECT
    if conditions:
        query += " WHERE " + " AND ".join(conditions)
    query += " ORDER BY txid, id"
    if limit is not None:
        arguments.append(limit)
        query += f" LIMIT ${len(arguments)}"
    return query, arguments


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

    async def horizon(self) -> int:
        """Every event with a key below this is committed, and no other ever will be."""
        stmt = _PG_HORIZON if is_postgres(self.db) else _SQLITE_HORIZON
        return int(await self.db.scalar(stmt) or 0)

    @property
    def reads_ahead(self) -> bool:
        """Whether `chain_rows` may run while the caller works on rows it already has
        (PostgreSQL: on the driver, one query at a time; not SQLite's session)."""
        return is_postgres(self.db)

    async def chain_rows(
        self,
        start: int | None,
        below: int | None,
        *,
        after: tuple[int, int] | None = None,
        limit: int | None = None,
    ) -> Sequence[Sequence[Any]]:
        """Events with keys in [start, below) (no bound where None), in chain order, as rows
        for `chain.canonical_lines`; only those after the (key, id) `after`."""
        if is_postgres(self.db):
            query, arguments = _pg_chain_rows(start, below, after, limit)
            connection = await (await self.db.connection()).get_raw_connection()
            driver: asyncpg.Connection = connection.driver_connection
            return cast("Sequence[Sequence[Any]]", await driver.fetch(query, *arguments))
        key = _events.c.id
        stmt = select(*_SQLITE_CHAIN_COLUMNS)
        if start is not None:
            stmt = stmt.where(key >= start)
        if below is not None:
            stmt = stmt.where(key < below)
        if after is not None:  # the key is the id
            stmt = stmt.where(key > after[1])
        stmt = stmt.order_by(key)
        if limit is not None:
            stmt = stmt.limit(limit)
        return (await self.db.execute(stmt)).all()

    async def first_key_after(
        self, start: int | None, below: int, *, occurred_after: datetime
    ) -> int | None:
        """The lowest key in [start, below) of an event that occurred after the moment."""
        key = chain_key(self.db)
        stmt = select(func.min(key)).where(key < below, _events.c.occurred_at > occurred_after)
        if start is not None:
            stmt = stmt.where(key >= start)
        found = await self.db.scalar(stmt)
        return None if found is None else int(found)

    async def add_batches(self, values: list[dict[str, Any]]) -> None:
        """Store sealed batches, in chain order."""
        await self.db.execute(insert(_batches), values)

    async def batch_page(self, *, after_id: int | None, limit: int) -> Sequence[RowMapping]:
        """The oldest `limit` batches with ids above `after_id`, oldest first."""
        stmt = _BATCH_PAGE
        if after_id is not None:
            stmt = stmt.where(_batches.c.id > after_id)
        return (await self.db.execute(stmt, {"limit": limit})).mappings().all()

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
