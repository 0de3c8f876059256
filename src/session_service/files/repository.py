"""SQL for files: the only place that selects, inserts, updates or deletes them."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Any, cast

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from session_service.core.sqltypes import table_of
from session_service.files.models import FileStatus, StoredFile
from session_service.files.snapshot import FileSnapshot

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
    """File rows, in the caller's unit of work: Core statements in, snapshots out."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def insert(self, file: FileSnapshot) -> None:
        """Record a new file."""
        await self.db.execute(_INSERT, asdict(file))

    async def get(
        self, file_id: uuid.UUID, *, session_id: uuid.UUID, for_update: bool = False
    ) -> FileSnapshot | None:
        """The file if it belongs to this session (another session's file is "not found")."""
        stmt = _GET_FOR_UPDATE if for_update else _GET
        row = (await self.db.execute(stmt, {"id": file_id, "session_id": session_id})).first()
        return None if row is None else _snapshot(row._mapping)

    async def name_for_key(self, key: str) -> str | None:
        """The original name of the uploaded file stored under `key`, if there is one."""
        stmt = select(_table.c.original_name).where(
            _table.c.storage_key == key, _table.c.status == FileStatus.UPLOADED.value
        )
        name: str | None = (await self.db.execute(stmt)).scalar()
        return name

    async def is_pending(self, key: str) -> bool:
        """Whether the file stored under `key` still awaits its upload."""
        stmt = select(_table.c.id).where(
            _table.c.storage_key == key, _table.c.status == FileStatus.PENDING.value
        )
        return (await self.db.execute(stmt)).first() is not None

    async def uploaded_ids(
        self, session_id: uuid.UUID, file_ids: list[uuid.UUID]
    ) -> set[uuid.UUID]:
        """Which of `file_ids` are uploaded files of this session."""
        stmt = select(_table.c.id).where(
            _table.c.session_id == session_id,
            _table.c.id.in_(file_ids),
            _table.c.status == FileStatus.UPLOADED.value,
        )
        return set((await self.db.execute(stmt)).scalars())

    async def list(self, session_id: uuid.UUID) -> list[FileSnapshot]:
        """A session's files, oldest first."""
        result = await self.db.execute(_LIST, {"session_id": session_id})
        return [_snapshot(row) for row in result.mappings()]

    async def usage(self, session_id: uuid.UUID) -> tuple[int, int]:
        """A session's files and bytes (pending or uploaded); the caller holds its lock."""
        result = await self.db.execute(_USAGE, {"session_id": session_id})
        count, total = cast(tuple[int, int], tuple(result.one()))
        return int(count), int(total)

    async def mark_uploaded(
        self, file: FileSnapshot, *, storage_key: str, stored_size: int, now: datetime
    ) -> FileSnapshot:
        """The object arrived and passed every check; `storage_key` is the checked copy."""
        return await self._update(
            file,
            status=FileStatus.UPLOADED.value,
            storage_key=storage_key,
            stored_size=stored_size,
            uploaded_at=now,
            updated_at=now,
        )

    async def mark_rejected(
        self, file: FileSnapshot, *, reason: str, now: datetime
    ) -> FileSnapshot:
        """The object failed a check and was deleted."""
        return await self._update(
            file, status=FileStatus.REJECTED.value, rejection_reason=reason, updated_at=now
        )

    async def delete(self, file_id: uuid.UUID) -> None:
        """Remove the row."""
        await self.db.execute(delete(_table).where(_table.c.id == file_id))

    async def _update(self, file: FileSnapshot, **values: Any) -> FileSnapshot:
        stmt = update(_table).where(_table.c.id == file.id).values(**values).returning(*_table.c)
        return _snapshot((await self.db.execute(stmt)).one()._mapping)


_GET = select(_table).where(
    _table.c.id == bindparam("id"), _table.c.session_id == bindparam("session_id")
)
_GET_FOR_UPDATE = _GET.with_for_update()
_LIST = (
    select(_table)
    .where(_table.c.session_id == bindparam("session_id"))
    .order_by(_table.c.created_at, _table.c.id)
)


def _snapshot(mapping: Any) -> FileSnapshot:
    values = dict(mapping)
    values["status"] = FileStatus(values["status"])
    return FileSnapshot(**values)
