"""Deleting objects a change let go of: queued in its unit of work, deleted once it committed.

Storage is never called inside a transaction (a slow store must not hold a connection or a
lock). So the change queues its deletions in its own unit of work and, once that has
committed, deletes them and forgets the rows that were due. If storage fails, or the
process stops in between, the rows stay and cleanup makes the deletions (SPEC §5): a
failure delays a deletion but never loses track of an object.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from session_service.core.clock import Clock
from session_service.core.db import after_commit_await, job_scope
from session_service.core.errors import DatabaseUnavailable
from session_service.deletions.repository import DeletionRepository
from session_service.deletions.targets import Deletion, file_objects
from session_service.files.models import FileStatus
from session_service.files.names import object_ref
from session_service.files.repository import FileRepository
from session_service.storage.base import ObjectStore, StorageUnavailable

log = structlog.get_logger(__name__)


class DeletionQueue:
    """Queues and makes deletions for the services that let go of objects; one per process."""

    def __init__(
        self,
        *,
        store: ObjectStore,
        maker: async_sessionmaker[AsyncSession],
        clock: Clock,
        slot_ttl: timedelta,
    ) -> None:
        self.store = store
        self.maker = maker
        self.clock = clock
        # How long an upload form writes to its quarantine key (UPLOAD_URL_TTL).
        self.slot_ttl = slot_ttl

    async def queue(self, deletions: Sequence[Deletion], *, db: AsyncSession) -> list[int]:
        """Queue deletions in the caller's unit of work (they go if it rolls back); row ids."""
        return await DeletionRepository(db).add(deletions, now=self.clock())

    async def queue_files(self, session_id: uuid.UUID, *, db: AsyncSession) -> None:
        """Queue the objects of a session's files, which nothing serves any more (a reset).

        Their checked objects are due at once, the quarantine of pending ones once their
        forms have expired (a completed file's quarantine was queued by its completion).
        """
        now = self.clock()
        deletions = [
            deletion
            for file in await FileRepository(db).list(session_id)
            for deletion in file_objects(
                file.storage_key,
                issued_at=file.created_at,
                now=now,
                slot_ttl=self.slot_ttl,
                quarantine=file.status == FileStatus.PENDING,
            )
        ]
        await self.queue(deletions, db=db)

    async def delete_after_commit(self, deletions: Sequence[Deletion], *, db: AsyncSession) -> None:
        """Queue deletions in this unit of work, and make them once it has committed."""
        ids = await self.queue(deletions, db=db)

        async def delete() -> None:
            await self.delete_now(deletions, ids)

        if ids:
            after_commit_await(db, delete)

    async def delete_now(self, deletions: Sequence[Deletion], ids: Sequence[int]) -> int | None:
        """Make committed deletions and forget their rows; how many objects went.

        Each key counts as one object (absent or not), each prefix as the objects under it.
        None when storage failed: the rows stay for cleanup.
        """
        keys = sorted({item.target for item in deletions if not item.is_prefix})
        try:
            if keys:
                await self.store.delete_many(keys)
            deleted = len(keys)
            for item in deletions:
                if item.is_prefix:
                    deleted += await self.store.purge_prefix(item.target)
        except StorageUnavailable as error:
            log.warning(
                "objects_left_for_cleanup",
                objects=sorted({object_ref(item.target) for item in deletions}),
                reason=error.reason,
            )
            return None
        await self.settle(ids)
        return deleted

    async def settle(self, ids: Sequence[int]) -> None:
        """Forget rows whose deletion succeeded (those due by now; see `Deletion`).

        If the database fails here, the rows stay and cleanup deletes again: nothing there.
        """
        try:
            async with job_scope(self.maker) as db:
                await DeletionRepository(db).settle(ids, now=self.clock())
        except DatabaseUnavailable:
            log.warning("deletions_not_settled", rows=len(ids))

    async def delete_or_queue(self, keys: Sequence[str]) -> None:
        """Delete objects no row refers to and no change queued; if storage fails, queue them.

        For objects a storage call just wrote that no commit is going to claim (a check's
        copy whose outcome went to another completion). If the database fails as well, the
        full sweep finds them.
        """
        try:
            await self.store.delete_many(keys)
        except StorageUnavailable as error:
            log.warning(
                "objects_left_for_cleanup",
                objects=[object_ref(key) for key in keys],
                reason=error.reason,
            )
            now = self.clock()
            try:
                async with job_scope(self.maker) as db:
                    await DeletionRepository(db).add([Deletion(key, now) for key in keys], now=now)
            except DatabaseUnavailable:
                log.warning("deletions_not_queued", objects=len(keys))
