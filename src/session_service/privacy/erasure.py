"""GDPR erasure: a session's personal data, file rows and stored objects, at once and for good.

The sessions it replaced by resets (linked to it, and proven held by the same browser)
go with it.

Objects go first (everything under the session's storage prefix, including objects no row
knows). If storage is unreachable, the database part still commits: the session row is gone,
so its prefix belongs to no live session and orphan cleanup removes it (SPEC §5); the
answer says so. The audit event keeps the session id and counts, nothing personal.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import partial
from typing import Literal

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from session_service.audit.events import EventType
from session_service.audit.service import AuditService
from session_service.core.clock import Clock
from session_service.core.context import RequestContext
from session_service.core.db import after_commit_await, is_postgres, job_scope, scrub_sqlite
from session_service.files.service import FileService
from session_service.privacy.journal import ErasureJournal
from session_service.sessions.service import SessionService
from session_service.sessions.snapshot import SessionSnapshot
from session_service.storage.base import StorageUnavailable

log = structlog.get_logger(__name__)

# Reset after reset after reset: a chain this long is followed no further.
MAX_PREVIOUS_SESSIONS = 100

ErasedBy = Literal["holder", "service", "journal"]


@dataclass(frozen=True, slots=True)
class Erasure:
    """What an erasure removed, and whether storage still has objects to clean up."""

    files: int
    objects_deleted: int
    storage_reachable: bool

    def plus(self, other: Erasure) -> Erasure:
        """Two erasures' counts together (a session and one it replaced)."""
        return Erasure(
            files=self.files + other.files,
            objects_deleted=self.objects_deleted + other.objects_deleted,
            storage_reachable=self.storage_reachable and other.storage_reachable,
        )


class SessionEraser:
    """Erases one session through the sessions and files services; one per process."""

    def __init__(
        self,
        *,
        sessions: SessionService,
        files: FileService,
        audit: AuditService,
        journal: ErasureJournal,
        clock: Clock,
    ) -> None:
        self.sessions = sessions
        self.files = files
        self.audit = audit
        self.journal = journal
        self.clock = clock

    async def erase(
        self, session: SessionSnapshot, *, db: AsyncSession, ctx: RequestContext, by: ErasedBy
    ) -> Erasure:
        """Erase a session the caller holds locked, and the sessions it replaced by resets.

        The replaced ones are linked to it (`previous_session_id`, the superseded event) and
        the browser proved it held them, so they are the same visitor's: leaving them would
        leave their files and details linkable to the erased one.
        """
        lineage = await self.sessions.lineage(session, db=db, limit=MAX_PREVIOUS_SESSIONS)
        erasure = await self._erase_one(session, db=db, ctx=ctx, by=by, of=None)
        erased = [session.id]
        for previous_id in lineage:
            previous = await self.sessions.get(previous_id, db=db, lock=True)
            if previous is not None:
                erased.append(previous.id)
                erasure = erasure.plus(
                    await self._erase_one(previous, db=db, ctx=ctx, by=by, of=session.id)
                )
        if erasure.storage_reachable:  # else the answer already says storage is down
            await self.journal.record(erased, erased_at=self.clock())
        if not is_postgres(db):  # no erased byte may stay behind in SQLite's WAL
            engine = db.bind
            assert isinstance(engine, AsyncEngine)
            after_commit_await(db, partial(scrub_sqlite, engine))
        return erasure

    async def _erase_one(
        self,
        session: SessionSnapshot,
        *,
        db: AsyncSession,
        ctx: RequestContext,
        by: ErasedBy,
        of: uuid.UUID | None,
    ) -> Erasure:
        """Objects first, then the row (its file rows go with it), then the audit event."""
        files = len(await self.files.list(session, db=db))
        deleted, reachable = 0, True
        try:
            deleted = await self.files.delete_every_object(session)
        except StorageUnavailable:
            reachable = False
            log.warning("erasure_left_orphans", session_id=str(session.id))
        await self.sessions.remove(session.id, db=db)
        details: dict[str, object] = {
            "by": by,
            "files": files,
            "objects_deleted": deleted,
            "storage": "deleted" if reachable else "unreachable_left_for_cleanup",
        }
        if of is not None:
            details["replaced_by"] = str(of)  # erased with the session that replaced it
        await self.audit.record(
            EventType.SESSION_ERASED, db=db, ctx=ctx, session_id=session.id, details=details
        )
        log.info("session_erased", session_id=str(session.id), by=by)
        return Erasure(files=files, objects_deleted=deleted, storage_reachable=reachable)


async def reapply_erasures(
    eraser: SessionEraser, maker: async_sessionmaker[AsyncSession], *, ctx: RequestContext
) -> tuple[int, list[uuid.UUID]]:
    """Erase again every journaled session a restored database holds; (entries, erased ids).

    One unit of work per session, each erased as its holder's erasure would be.
    """
    entries, reapplied = 0, []
    async for session_id in eraser.journal.erased():
        entries += 1
        async with job_scope(maker) as db:
            session = await eraser.sessions.get(session_id, db=db, lock=True)
            if session is not None:
                await eraser.erase(session, db=db, ctx=ctx, by="journal")
                reapplied.append(session_id)
    if reapplied:
        log.warning("erasures_reapplied", count=len(reapplied))
    return entries, reapplied
