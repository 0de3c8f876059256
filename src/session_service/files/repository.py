"""SQL for files: the only place that selects, inserts, updates or deletes them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import bindparam, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from session_service.core.sqltypes import table_of
from session_service.files.models import FileStatus, StoredFile

_table = table_of(StoredFile)
_INSERT = insert(_table)
_HELD = (FileStatus.PENDING.value, FileStatus.UPLOADED.value)


# Counted in a statement of its own after the caller locked the session (its own earlier
# statement): in READ COMMITTED each statement takes a fresh snapshot, so the count sees
# files that concurrent slots committed while this one waited for the lock.
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

    async def usage(self, session_id: uuid.UUID) -> tuple[int, int]:
        """A session's files and bytes (pending or uploaded); the caller holds its lock."""
        result = await self.db.execute(_USAGE, {"session_id": session_id})
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
