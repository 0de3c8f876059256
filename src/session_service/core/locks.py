"""Advisory locks: one thing at a time across every instance sharing the database.

PostgreSQL: advisory locks by a fixed key. SQLite serves one process: a process lock does
the same, and each of its write transactions already holds the database lock
(`BEGIN IMMEDIATE`, see `db.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import IntEnum

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from session_service.core.db import is_postgres


class LockKey(IntEnum):
    """Arbitrary constants shared by every instance."""

    MIGRATIONS = 0x5E55_0001
    AUDIT_CHAIN = 0x5E55_0002
    CLEANUP = 0x5E55_0003


_TRY_XACT = text("SELECT pg_try_advisory_xact_lock(:key)")
_TRY_SESSION = text("SELECT pg_try_advisory_lock(:key)")
_UNLOCK_SESSION = text("SELECT pg_advisory_unlock(:key)")
_process_locks: dict[LockKey, asyncio.Lock] = {}


async def try_advisory_lock(db: AsyncSession, key: LockKey) -> bool:
    """Take `key` for the rest of this transaction without waiting; False if it is held.

    On SQLite the transaction's write lock already excludes every other writer: True.
    """
    if not is_postgres(db):
        return True
    return bool(await db.scalar(_TRY_XACT, {"key": int(key)}))


@asynccontextmanager
async def advisory_lock_for_run(engine: AsyncEngine, key: LockKey) -> AsyncIterator[bool]:
    """Hold `key` across several transactions (a whole job run); yields False if held.

    PostgreSQL: a session-level lock on a connection of its own, kept for the run. SQLite:
    a lock of this process (one process serves an embedded database).
    """
    local = _process_locks.setdefault(key, asyncio.Lock())
    if local.locked():
        yield False
        return
    async with local:
        if not is_postgres(engine):
            yield True
            return
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            if not await conn.scalar(_TRY_SESSION, {"key": int(key)}):
                yield False
                return
            try:
                yield True
            finally:
                await conn.execute(_UNLOCK_SESSION, {"key": int(key)})
