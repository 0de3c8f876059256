"""SQL for files: the only place that selects, inserts, updates or deletes them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import bindparam, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from session_service.files.models import FileStatus, StoredFile
from session_service.sessions.models import Session

_table = StoredFile.__table__  # type: ignore[attr-defined]
_sessions = Session.__table__  # type: ignore[attr-defined]
_INSERT = insert(_table)
_HELD = (FileStatus.PENDING.value, FileStatus.UPLOADED.value)


# Prebuilt, executed with parameters. Two statements on purpose: in READ COMMITTED a
# statement that waits for FOR UPDATE re-checks the locked row but keeps its snapshot for
# everything else, so counting in the locking statement would miss files that concurrent
# slots committed meanwhile. The count runs after the lock, with a fresh snapshot.
_LOCK_SESSION = (
    select(_sessions.c.id).where(_sessions.c.id == bindparam("session_id")).with_for_update()
)
_USAGE = select(func.count(), func.coalesce(func.sum(_table.c.declared_size), 0)).where(
    _table.c.session_id == bindparam("session_id"), _table.c.status.in_(_HELD)
)


class FileRepository:
    """File rows, in the caller's unit of work."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def insert(self, values: dict[str, Any]) -> None:
        """Record a new file."""
        await self.db.execute(_INSERT, values)

    async def get(
        self, file_id: uuid.UUID, *, session_id: uuid.UUID, for_update: bool = False
    ) -> StoredFile | None:
        """The file if it belongs to this session (another session's file is "not found")."""
        stmt = select(StoredFile).where(_table.c.id == file_id, _table.c.session_id == session_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.db.execute(stmt)).scalar_one_or_none()

    async def list(self, session_id: uuid.UUID) -> Sequence[StoredFile]:
        """A session's files, oldest first."""
        stmt = (
            select(StoredFile)
            .where(_table.c.session_id == session_id)
            .order_by(_table.c.created_at, _table.c.id)
        )
        return (await self.db.execute(stmt)).scalars().all()

    async def lock_usage(self, session_id: uuid.UUID) -> tuple[int, int]:
        """Lock the session for this transaction; its files and bytes (pending or uploaded).

        PostgreSQL: the session row, FOR UPDATE. SQLite: the write transaction already holds
        the database lock (BEGIN IMMEDIATE).
        """
        params = {"session_id": session_id}
        await self.db.execute(_LOCK_SESSION, params)
        result = await self.db.execute(_USAGE, params)
        count, total = cast(tuple[int, int], tuple(result.one()))
        return int(count), int(total)

    async def mark_uploaded(self, file: StoredFile, *, stored_size: int, now: datetime) -> None:
        """The object arrived and passed every check."""
        file.status, file.stored_size = FileStatus.UPLOADED, stored_size
        file.uploaded_at = file.updated_at = now
        await self._save(file)

    async def mark_rejected(self, file: StoredFile, *, reason: str, now: datetime) -> None:
        """The object failed a check and was deleted."""
        file.status, file.rejection_reason, file.updated_at = FileStatus.REJECTED, reason, now
        await self._save(file)

    async def delete(self, file_id: uuid.UUID) -> None:
        """Remove the row."""
        await self.db.execute(delete(_table).where(_table.c.id == file_id))

    async def _save(self, file: StoredFile) -> None:
        self.db.add(file)
        await self.db.flush()
