"""SQL for idempotency keys: the only place that reads or writes them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from session_service.core.sqltypes import table_of
from session_service.idempotency.models import IdempotencyRecord

_table = table_of(IdempotencyRecord)

# `INSERT ... ON CONFLICT DO NOTHING RETURNING lookup`: on PostgreSQL a claim of a key that
# another transaction has just claimed waits for that transaction, then inserts nothing
# (it committed) or inserts (it rolled back); no error ever aborts the request's transaction.
_CLAIM: dict[str, ReturningInsert[tuple[str]]] = {
    "postgresql": postgresql.insert(_table).on_conflict_do_nothing().returning(_table.c.lookup),
    "sqlite": sqlite.insert(_table).on_conflict_do_nothing().returning(_table.c.lookup),
}


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A key's row as read: its request digest, its sealed answer (None: a placeholder)."""

    lookup: str
    request_digest: str
    session_id: uuid.UUID | None
    answer: bytes | None
    expires_at: datetime


class IdempotencyRepository:
    """Idempotency rows, in the caller's unit of work."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def find(self, lookup: str) -> StoredKey | None:
        """The row of this lookup digest, expired or not."""
        stmt = select(
            _table.c.lookup,
            _table.c.request_digest,
            _table.c.session_id,
            _table.c.answer,
            _table.c.expires_at,
        ).where(_table.c.lookup == lookup)
        row = (await self.db.execute(stmt)).first()
        return None if row is None else StoredKey(**row._mapping)

    async def claim(
        self, lookup: str, *, request_digest: str, now: datetime, expires_at: datetime
    ) -> bool:
        """Insert a placeholder for this lookup; False (nothing written) if it has a row."""
        stmt = _CLAIM[self.db.get_bind().dialect.name]
        values = {
            "lookup": lookup,
            "request_digest": request_digest,
            "session_id": None,
            "answer": None,
            "created_at": now,
            "expires_at": expires_at,
        }
        return (await self.db.execute(stmt, values)).first() is not None

    async def fill(self, lookup: str, *, session_id: uuid.UUID, answer: bytes) -> None:
        """Give a claimed placeholder its sealed answer and the session that answer is of."""
        await self.db.execute(
            update(_table)
            .where(_table.c.lookup == lookup)
            .values(session_id=session_id, answer=answer)
        )

    async def forget_expired(self, lookup: str, *, now: datetime) -> None:
        """Delete this lookup's row if it has expired (a new claim replaces it)."""
        await self.db.execute(
            delete(_table).where(_table.c.lookup == lookup, _table.c.expires_at <= now)
        )

    async def count_expired(self, *, now: datetime) -> int:
        """How many rows have expired by `now`."""
        stmt = select(func.count()).select_from(_table).where(_table.c.expires_at <= now)
        return int((await self.db.execute(stmt)).scalar_one())

    async def purge_expired(self, *, now: datetime, limit: int) -> int:
        """Delete at most `limit` expired rows (a range of the `expires_at` index)."""
        batch = select(_table.c.lookup).where(_table.c.expires_at <= now).limit(limit)
        result = await self.db.execute(
            delete(_table).where(_table.c.lookup.in_(batch)).returning(_table.c.lookup)
        )
        return len(result.all())
