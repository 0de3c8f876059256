"""Advisory locks: one thing at a time across every instance sharing the database.

PostgreSQL: transaction-scoped advisory locks by a fixed key (never session-level ones,
which PgBouncer's transaction pooling would leave held on a server connection). SQLite
serves one process: a process lock does the same, and each of its write transactions
already holds the database lock (`BEGIN IMMEDIATE`, see `db.py`).
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

    PostgreSQL: a transaction-scoped lock, taken in a transaction of its own that stays
    open (and writes nothing) until the run ends. It ends with that transaction, so it can
    never outlive its holder: not a crashed process, not a server connection that PgBouncer
    (transaction pooling) hands to someone else, which a session-level lock would outlive.
    SQLite: a lock of this process (one process serves an embedded database).
    """
    if not is_postgres(engine):
        local = _process_locks.setdefault(key, asyncio.Lock())
        if local.locked():
            yield False
            return
        async with local:
            yield True
        return
    async with engine.connect() as conn, conn.begin():
        yield bool(await conn.scalar(_TRY_XACT, {"key": int(key)}))
