"""SQL for sessions: the only place that selects, inserts or updates them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import asyncpg
import structlog
from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.sql.dml import ReturningInsert
from sqlalchemy.util import greenlet_spawn

from session_service.core.db import translated_errors
from session_service.core.sqltypes import table_of
from session_service.sessions.models import Session, SessionStatus, SessionTombstone, TokenEnd
from session_service.sessions.snapshot import SessionSnapshot

log = structlog.get_logger(__name__)

_table = table_of(Session)
_tombstones = table_of(SessionTombstone)
_BURY = {
    "postgresql": postgresql.insert(_tombstones).on_conflict_do_nothing(),
    "sqlite": sqlite.insert(_tombstones).on_conflict_do_nothing(),
}
_FIELDS = tuple(field.name for field in fields(SessionSnapshot))
_STATUS_INDEX = _FIELDS.index("status")
# Errors that mean the connection (or the server) is gone. A terminated backend shows up,
# depending on timing, as "connection is closed", as admin shutdown (57P01) if its FATAL
# message is read first, or as a connection left in a broken protocol state.
_DISCONNECTS = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InternalClientError,
)
_COLUMNS = ", ".join(_FIELDS)
_SLIDING = (SessionStatus.ACTIVE, SessionStatus.PENDING_VERIFICATION)

# The validate hot path on PostgreSQL, one statement and one round trip: slide the expiry
# when the throttled write is due (UPDATE ... RETURNING), otherwise read the row as it is.
# Both halves see the same snapshot, so the SELECT half only answers when nothing was updated.
# Built from our own table's column names only: no input reaches this string.
_PG_TOUCH = f"""
WITH touched AS (
    UPDATE sessions
       SET last_seen_at = $2,
           expires_at = LEAST(
               $2 + CASE WHEN status = 'active' THEN $4::interval ELSE $5::interval END,
               created_at + $6::interval
           )
     WHERE token_digest = $1
       AND status IN ('active', 'pending_verification')
       AND expires_at > $2
       AND last_seen_at <= $3
 RETURNING {_COLUMNS}
)
SELECT {_COLUMNS} FROM touched
UNION ALL
SELECT {_COLUMNS} FROM sessions WHERE token_digest = $1 AND NOT EXISTS (SELECT 1 FROM touched)
"""  # noqa: S608


# `INSERT ... ON CONFLICT DO NOTHING RETURNING id` (a taken id or token digest), built once
# per dialect and executed with a parameter dict (`.values(...)` per call coerces anew).
_INSERT_UNLESS_TAKEN: dict[str, ReturningInsert[tuple[uuid.UUID]]] = {
    "postgresql": postgresql.insert(_table).on_conflict_do_nothing().returning(_table.c.id),
    "sqlite": sqlite.insert(_table).on_conflict_do_nothing().returning(_table.c.id),
}


class SessionRepository:
    """Session rows, in the caller's unit of work."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def insert(self, session: SessionSnapshot) -> bool:
        """Insert a new session; False (and nothing written) if its id or token is taken.

        `ON CONFLICT DO NOTHING` reports a taken id without an error, so the transaction
        stays usable for a retry with no savepoint round trips.
        """
        stmt = _INSERT_UNLESS_TAKEN[self.db.get_bind().dialect.name]
        values = {name: getattr(session, name) for name in _FIELDS}
        return (await self.db.execute(stmt, values)).first() is not None

    async def get(self, session_id: uuid.UUID, *, lock: bool = False) -> SessionSnapshot | None:
        """The session with this (public) id, whatever its status.

        `lock`: `SELECT ... FOR UPDATE`, held until this unit of work ends, so a reset, an
        erasure or another change of the same session waits for it (and it for them). On
        SQLite the write transaction already holds the database lock (`BEGIN IMMEDIATE`).
        """
        stmt = _SELECT_BY_ID_FOR_UPDATE if lock else _SELECT_BY_ID
        row = (await self.db.execute(stmt, {"session_id": session_id})).first()
        return None if row is None else _snapshot(row._mapping)

    async def get_by_token(self, digest: str, *, lock: bool = False) -> SessionSnapshot | None:
        """The session whose live token has this digest, whatever its status.

        Locked, the row is found by its token and then locked by its id, so a request that
        waited for the lock gets the row as the other transaction left it: a token digest
        that differs from `digest` means the token was replaced while this one waited.
        """
        stmt = _SELECT_BY_TOKEN_FOR_UPDATE if lock else _SELECT_BY_TOKEN
        row = (await self.db.execute(stmt, {"digest": digest})).first()
        return None if row is None else _snapshot(row._mapping)

    async def token_end(self, digest: str) -> TokenEnd | None:
        """Why the token with this digest stopped working; None if it never worked."""
        stmt = select(_tombstones.c.reason).where(_tombstones.c.digest == digest)
        reason = (await self.db.execute(stmt)).scalar()
        return None if reason is None else TokenEnd(reason)

    async def slide(self, session_id: uuid.UUID, *, now: datetime, expires_at: datetime) -> None:
        """Record a visit: `last_seen_at` and the idle expiry move to `now`."""
        stmt = (
            update(_table)
            .where(_table.c.id == session_id)
            .values(last_seen_at=now, expires_at=expires_at)
        )
        await self.db.execute(stmt)

    async def save_details(
        self,
        session_id: uuid.UUID,
        *,
        name: str,
        email: str,
        token_digest: str,
        now: datetime,
        expires_at: datetime,
    ) -> SessionSnapshot | None:
        """Store details and consent under a new token; the session awaits verification."""
        stmt = (
            update(_table)
            .where(
                _table.c.id == session_id,
                _table.c.status.in_([status.value for status in _SLIDING]),
            )
            .values(
                name=name,
                email=email,
                consent_user_data=True,
                consent_given_at=now,
                token_digest=token_digest,
                status=SessionStatus.PENDING_VERIFICATION.value,
                updated_at=now,
                last_seen_at=now,
                expires_at=expires_at,
            )
            .returning(*_table.c)
        )
        row = (await self.db.execute(stmt)).first()
        return None if row is None else _snapshot(row._mapping)

    async def complete(
        self, session_id: uuid.UUID, *, now: datetime, ends_at: datetime
    ) -> SessionSnapshot | None:
        """Mark a live pending session completed; None when it is not one (no change).

        A completed session no longer expires when idle, only at `ends_at`.
        """
        stmt = (
            update(_table)
            .where(
                _table.c.id == session_id,
                _table.c.status == SessionStatus.PENDING_VERIFICATION.value,
                _table.c.expires_at > now,
            )
            .values(
                status=SessionStatus.COMPLETED.value,
                completed_at=now,
                updated_at=now,
                expires_at=ends_at,
            )
            .returning(*_table.c)
        )
        row = (await self.db.execute(stmt)).first()
        return None if row is None else _snapshot(row._mapping)

    async def delete(self, session_id: uuid.UUID, *, now: datetime) -> bool:
        """Remove the row (its files' rows go with it: ON DELETE CASCADE), burying its token."""
        stmt = delete(_table).where(_table.c.id == session_id).returning(_table.c.token_digest)
        row = (await self.db.execute(stmt)).first()
        if row is not None:
            await self.bury([row.token_digest], now=now, reason=TokenEnd.ENDED)
        return row is not None

    async def bury(self, digests: Sequence[str | None], *, now: datetime, reason: TokenEnd) -> None:
        """Keep the digests of tokens that stopped working (`ON CONFLICT DO NOTHING`)."""
        rows = [
            {"digest": digest, "ended_at": now, "reason": reason.value}
            for digest in digests
            if digest is not None
        ]
        if rows:
            await self.db.execute(_BURY[self.db.get_bind().dialect.name], rows)

    async def purge_tombstones(self, *, ended_before: datetime) -> int:
        """Forget tombstones older than the audit trail keeps; how many went."""
        stmt = (
            delete(_tombstones)
            .where(_tombstones.c.ended_at < ended_before)
            .returning(_tombstones.c.digest)
        )
        return len((await self.db.execute(stmt)).all())

    async def retire_token(
        self, session_id: uuid.UUID, digest: str, *, now: datetime, status: SessionStatus | None
    ) -> None:
        """End a live token (and optionally change the status): its session keeps no token."""
        values: dict[str, Any] = {"token_digest": None, "updated_at": now}
        if status is not None:
            values["status"] = status.value
        await self.db.execute(update(_table).where(_table.c.id == session_id).values(**values))
        await self.bury([digest], now=now, reason=TokenEnd.RESET)


class SessionLookup:
    """The validate hot path: one statement on a pooled connection, outside any ORM session.

    One per process. On PostgreSQL it talks to the pooled asyncpg connection directly
    (checkout and return are the only SQLAlchemy work), in autocommit: no transaction
    wrapper around what is usually a pure read.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.is_postgres = engine.dialect.name == "postgresql"

    async def touch(
        self,
        digest: str,
        *,
        now: datetime,
        seen_before: datetime,
        idle_ttl: timedelta,
        pending_ttl: timedelta,
        max_age: timedelta,
    ) -> SessionSnapshot | None:
        """Read the session of a token, sliding its expiry when `last_seen_at <= seen_before`."""
        touch = _Touch(digest, now, seen_before, idle_ttl, pending_ttl, max_age)
        async with translated_errors():
            if self.is_postgres:
                return await self._touch_postgres(touch)
            return await self._touch_portable(touch)

    async def _touch_postgres(self, touch: _Touch) -> SessionSnapshot | None:
        try:
            row = await self._fetch_touch(touch)
        except _DISCONNECTS:
            # The server went away (restart, failover): every pooled connection is likely
            # dead. Start a fresh pool, as SQLAlchemy does on its own paths, and retry once;
            # the statement is safe to repeat.
            log.warning("database_connection_lost", action="pool_replaced")
            await self.engine.dispose(close=False)
            row = await self._fetch_touch(touch)
        if row is None:
            return None
        values = list(row.values())
        values[_STATUS_INDEX] = SessionStatus(values[_STATUS_INDEX])
        return SessionSnapshot(*values)

    async def _fetch_touch(self, touch: _Touch) -> Any:
        pooled = await self.engine.raw_connection()
        try:
            driver: asyncpg.Connection = pooled.driver_connection
            return await driver.fetchrow(_PG_TOUCH, *touch)
        except _DISCONNECTS:
            await greenlet_spawn(pooled.invalidate)  # never back into the pool
            raise
        finally:
            await greenlet_spawn(pooled.close)

    async def _touch_portable(self, touch: _Touch) -> SessionSnapshot | None:
        async with self.engine.begin() as conn:
            stmt = select(_table).where(_table.c.token_digest == touch.digest)
            found = (await conn.execute(stmt)).first()
            if found is None:
                return None
            current = dict(found._mapping)
            current["status"] = SessionStatus(current["status"])
            if current["status"] in _SLIDING and _due(current, touch):
                ttl = (
                    touch.idle_ttl
                    if current["status"] == SessionStatus.ACTIVE
                    else touch.pending_ttl
                )
                expires_at = min(touch.now + ttl, current["created_at"] + touch.max_age)
                current.update(last_seen_at=touch.now, expires_at=expires_at)
                await conn.execute(
                    update(_table)
                    .where(_table.c.id == current["id"])
                    .values(last_seen_at=touch.now, expires_at=expires_at)
                )
            return SessionSnapshot(**current)


class _Touch(NamedTuple):
    """The parameters of one touch, in `_PG_TOUCH`'s positional order."""

    digest: str
    now: datetime
    seen_before: datetime
    idle_ttl: timedelta
    pending_ttl: timedelta
    max_age: timedelta


_SELECT_BY_ID = select(_table).where(_table.c.id == bindparam("session_id"))
_SELECT_BY_ID_FOR_UPDATE = _SELECT_BY_ID.with_for_update()
_SELECT_BY_TOKEN = select(_table).where(_table.c.token_digest == bindparam("digest"))
# PostgreSQL locks the row found by id; after waiting, it returns the row's latest version
# even when that no longer carries the token (the id subquery is evaluated only once).
_SELECT_BY_TOKEN_FOR_UPDATE = (
    select(_table)
    .where(
        _table.c.id
        == select(_table.c.id).where(_table.c.token_digest == bindparam("digest")).scalar_subquery()
    )
    .with_for_update()
)


def _snapshot(mapping: Any) -> SessionSnapshot:
    values = dict(mapping)
    values["status"] = SessionStatus(values["status"])
    return SessionSnapshot(**values)


def _due(row: dict[str, Any], touch: _Touch) -> bool:
    expires_at: datetime | None = row["expires_at"]
    return (
        expires_at is not None
        and expires_at > touch.now
        and row["last_seen_at"] <= touch.seen_before
    )
