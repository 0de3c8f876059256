"""The SQL of cleanup: indexed, batched queries whose cost follows the work, not the tables."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from session_service.cleanup.models import CleanupMark, Mark
from session_service.core.sqltypes import table_of
from session_service.files.models import FileStatus, StoredFile
from session_service.sessions.models import Session, SessionStatus, TokenEnd
from session_service.sessions.repository import SessionRepository

_sessions = table_of(Session)
_files = table_of(StoredFile)
_marks = table_of(CleanupMark)

# Sessions whose files are still wanted: anything not superseded or expired.
LIVE_STATUSES = (
    SessionStatus.ACTIVE.value,
    SessionStatus.PENDING_VERIFICATION.value,
    SessionStatus.COMPLETED.value,
)


def _expired(now: datetime, reset_before: datetime, created_before: datetime) -> Any:
    """Past their end (`expires_at`, as validate sees it, capped at the absolute lifetime),
    completed before that cap existed and older than it (`created_before`), or superseded
    long ago. Each branch is a range on the (status, expires_at) index."""
    return or_(
        _sessions.c.status == SessionStatus.EXPIRED.value,
        and_(_sessions.c.status.in_(LIVE_STATUSES), _sessions.c.expires_at <= now),
        and_(
            _sessions.c.status == SessionStatus.COMPLETED.value,
            _sessions.c.expires_at.is_(None),
            _sessions.c.created_at <= created_before,
        ),
        and_(
            _sessions.c.status == SessionStatus.RESET.value,
            _sessions.c.updated_at <= reset_before,
        ),
    )


class CleanupRepository:
    """Finds and deletes what cleanup removes, a batch at a time."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def expired_sessions(
        self,
        *,
        now: datetime,
        reset_before: datetime,
        created_before: datetime,
        after: uuid.UUID | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Expired or long-superseded sessions, by id (keyset: `after` the last one seen)."""
        query = (
            select(_sessions.c.id, _sessions.c.status, _sessions.c.storage_id)
            .where(_expired(now, reset_before, created_before))
            .order_by(_sessions.c.id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(_sessions.c.id > after)
        return [dict(row) for row in (await self.db.execute(query)).mappings()]

    async def stored_files(
        self, session_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[dict[str, Any]]]:
        """These sessions' files: storage key, status and when their slot was issued."""
        rows = await self.db.execute(
            select(
                _files.c.session_id, _files.c.storage_key, _files.c.status, _files.c.created_at
            ).where(_files.c.session_id.in_(session_ids))
        )
        files: dict[uuid.UUID, list[dict[str, Any]]] = {}
        for row in rows.mappings():
            files.setdefault(row["session_id"], []).append(dict(row))
        return files

    async def delete_expired_sessions(
        self,
        session_ids: Sequence[uuid.UUID],
        *,
        now: datetime,
        reset_before: datetime,
        created_before: datetime,
    ) -> set[uuid.UUID]:
        """Delete those still expired (their file rows cascade); returns the ids deleted."""
        result = await self.db.execute(
            delete(_sessions)
            .where(_sessions.c.id.in_(session_ids), _expired(now, reset_before, created_before))
            .returning(_sessions.c.id, _sessions.c.token_digest)
        )
        rows = result.all()
        await SessionRepository(self.db).bury(
            sorted(row.token_digest for row in rows if row.token_digest is not None),
            now=now,
            reason=TokenEnd.ENDED,
        )
        return {row.id for row in rows}

    async def purge_tombstones(self, *, ended_before: datetime) -> int:
        """Forget tombstones as old as the audit events purged with them."""
        return await SessionRepository(self.db).purge_tombstones(ended_before=ended_before)

    async def abandoned_uploads(
        self, *, created_before: datetime, after: uuid.UUID | None, limit: int
    ) -> list[dict[str, Any]]:
        """Pending files older than the grace time, by id (keyset: `after` the last seen)."""
        query = (
            select(_files.c.id, _files.c.session_id, _files.c.storage_key, _files.c.created_at)
            .where(
                _files.c.status == FileStatus.PENDING.value,
                _files.c.created_at <= created_before,
            )
            .order_by(_files.c.id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(_files.c.id > after)
        return [dict(row) for row in (await self.db.execute(query)).mappings()]

    async def delete_abandoned_uploads(
        self, file_ids: Sequence[uuid.UUID], *, created_before: datetime
    ) -> set[uuid.UUID]:
        """Delete those still pending (a completion may have won the race); returns ids."""
        result = await self.db.execute(
            delete(_files)
            .where(
                _files.c.id.in_(file_ids),
                _files.c.status == FileStatus.PENDING.value,
                _files.c.created_at <= created_before,
            )
            .returning(_files.c.id)
        )
        return set(result.scalars())

    async def wanted_keys(self, keys: Sequence[str]) -> set[str]:
        """Of `keys`, those a file row of a live session still refers to."""
        query = (
            select(_files.c.storage_key)
            .join(_sessions, _sessions.c.id == _files.c.session_id)
            .where(
                _files.c.storage_key.in_(bindparam("keys", expanding=True)),
                _sessions.c.status.in_(LIVE_STATUSES),
            )
        )
        return set((await self.db.execute(query, {"keys": list(keys)})).scalars())

    async def live_storage_ids(self, storage_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Of `storage_ids`, those of live sessions (whose prefixes are never purged)."""
        query = select(_sessions.c.storage_id).where(
            _sessions.c.storage_id.in_(bindparam("ids", expanding=True)),
            _sessions.c.status.in_(LIVE_STATUSES),
        )
        return set((await self.db.execute(query, {"ids": list(storage_ids)})).scalars())

    async def mark(self, name: Mark) -> datetime | None:
        """The moment remembered under `name`, if any."""
        at: datetime | None = (
            await self.db.execute(select(_marks.c.at).where(_marks.c.name == name.value))
        ).scalar()
        return at

    async def set_mark(self, name: Mark, at: datetime) -> None:
        """Remember `at` under `name` (only the run holding the cleanup lock writes marks)."""
        changed = await self.db.execute(
            update(_marks).where(_marks.c.name == name.value).values(at=at)
        )
        if not changed.rowcount:  # type: ignore[attr-defined]
            await self.db.execute(_marks.insert().values(name=name.value, at=at))
