"""SQL for sessions: the only place that selects, inserts or updates them."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import exc as sa_exc
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from session_service.sessions.models import Session, SessionStatus

_table = Session.__table__  # type: ignore[attr-defined]
_COLUMNS = ", ".join(column.name for column in _table.columns)
_SLIDING = (SessionStatus.ACTIVE, SessionStatus.PENDING_VERIFICATION)

# The validate hot path on PostgreSQL, one statement and one round trip: slide the expiry
# when the throttled write is due (UPDATE ... RETURNING), otherwise read the row as it is.
# Both halves see the same snapshot, so the SELECT half only answers when nothing was updated.
# Built from our own table's column names only: no input reaches this string.
_PG_TOUCH = f"""
WITH touched AS (
    UPDATE sessions
       SET last_seen_at = $2,
           expires_at = $2 + CASE WHEN status = 'active' THEN $4::interval ELSE $5::interval END
     WHERE id = $1
       AND status IN ('active', 'pending_verification')
       AND expires_at > $2
       AND last_seen_at <= $3
 RETURNING {_COLUMNS}
)
SELECT {_COLUMNS} FROM touched
UNION ALL
SELECT {_COLUMNS} FROM sessions WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM touched)
"""  # noqa: S608


def _is_unique_violation(error: sa_exc.IntegrityError) -> bool:
    if getattr(error.orig, "sqlstate", None) == "23505":
        return True
    return "UNIQUE constraint failed" in str(error.orig)


class SessionRepository:
    """Session rows, in the request's transaction; `touch` alone runs outside it."""

    def __init__(self, db: AsyncSession, *, engine: AsyncEngine) -> None:
        self.db = db
        self.engine = engine

    async def insert(self, session: Session) -> bool:
        """Insert a new session; False (and nothing written) if the id is taken."""
        try:
            async with self.db.begin_nested():
                self.db.add(session)
                await self.db.flush()
        except sa_exc.IntegrityError as error:
            if _is_unique_violation(error):
                return False
            raise
        return True

    async def get(self, session_id: uuid.UUID) -> Session | None:
        """The session with this id, if any."""
        return await self.db.get(Session, session_id)

    async def exists(self, session_id: uuid.UUID) -> bool:
        """Whether a session with this id exists, whatever its status."""
        stmt = select(_table.c.id).where(_table.c.id == session_id)
        return (await self.db.execute(stmt)).first() is not None

    async def mark_reset(self, session_id: uuid.UUID, *, now: datetime) -> bool:
        """Supersede a session; True only for the one caller that changed it.

        The conditional UPDATE takes the row lock, so concurrent resets of the same old
        session queue on it and exactly one of them sees a row come back.
        """
        stmt = (
            update(_table)
            .where(_table.c.id == session_id, _table.c.status != SessionStatus.RESET.value)
            .values(status=SessionStatus.RESET.value, updated_at=now)
            .returning(_table.c.id)
        )
        return (await self.db.execute(stmt)).first() is not None

    async def touch(
        self,
        session_id: uuid.UUID,
        *,
        now: datetime,
        seen_before: datetime,
        idle_ttl: timedelta,
        pending_ttl: timedelta,
    ) -> Session | None:
        """Read a session for validation, sliding its expiry when `last_seen_at <= seen_before`.

        Runs on its own pooled connection in autocommit (no ORM session, no transaction
        wrapper around the read): it is the hot path every user action goes through.
        """
        async with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                raw = await conn.get_raw_connection()
                driver: asyncpg.Connection = raw.driver_connection
                try:
                    row: Any = await driver.fetchrow(
                        _PG_TOUCH, session_id, now, seen_before, idle_ttl, pending_ttl
                    )
                except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError):
                    await conn.invalidate()
                    raise
                return None if row is None else Session(**dict(row.items()))
            async with conn.begin():
                found = (
                    await conn.execute(select(_table).where(_table.c.id == session_id))
                ).first()
                if found is None:
                    return None
                current = dict(found._mapping)
                if current["status"] in _SLIDING and _due(current, now, seen_before):
                    ttl = idle_ttl if current["status"] == SessionStatus.ACTIVE else pending_ttl
                    current.update(last_seen_at=now, expires_at=now + ttl)
                    await conn.execute(
                        update(_table)
                        .where(_table.c.id == session_id)
                        .values(last_seen_at=now, expires_at=now + ttl)
                    )
                return Session(**current)


def _due(row: dict[str, Any], now: datetime, seen_before: datetime) -> bool:
    expires_at: datetime | None = row["expires_at"]
    return expires_at is not None and expires_at > now and row["last_seen_at"] <= seen_before
