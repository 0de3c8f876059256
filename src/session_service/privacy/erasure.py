"""GDPR erasure: a session's personal data, file rows and stored objects, at once and for good.

The sessions it replaced by resets (linked to it, and proven held by the same browser)
go with it.

The database part commits first (rows gone, `session.erased` written, the session's storage
prefixes queued for deletion); stored objects (everything under those prefixes, including
objects no row knows) are purged and the erasure journal is written after the commit, never
inside the transaction: a slow or hung store must not hold a pooled connection and the
session's lock, nor commit the audit event late. If storage fails or the process dies in
between, the queued prefixes stay and cleanup purges them (SPEC §5); the answer says so. The
audit event keeps the session id and counts, nothing personal.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from session_service.audit.events import EventType
from session_service.audit.service import AuditService
from session_service.conversations.service import ConversationService
from session_service.core.clock import Clock
from session_service.core.context import RequestContext
from session_service.core.db import after_commit_await, is_postgres, job_scope, scrub_sqlite
from session_service.deletions.service import DeletionQueue
from session_service.deletions.targets import Deletion, session_objects
from session_service.files.service import FileService
from session_service.privacy.journal import ErasureJournal
from session_service.sessions.service import SessionService
from session_service.sessions.snapshot import SessionSnapshot

log = structlog.get_logger(__name__)

# Reset after reset after reset: a chain this long is followed no further.
MAX_PREVIOUS_SESSIONS = 100

ErasedBy = Literal["holder", "service", "journal"]


@dataclass(slots=True)
class Erasure:
    """What an erasure removed; its storage half is filled in once the erasure committed.

    `storage_reachable` is None until then: the answer is decided when it is sent, after
    the unit of work has committed and the objects were (or could not be) deleted.
    """

    files: int = 0
    erased: list[SessionSnapshot] = field(default_factory=list)
    objects_deleted: int = 0
    storage_reachable: bool | None = None
    # The erased sessions' prefixes, queued in the erasure's unit of work (and their rows).
    deletions: list[Deletion] = field(default_factory=list, repr=False)
    queued: list[int] = field(default_factory=list, repr=False)


class SessionEraser:
    """Erases one session through the sessions and files services; one per process."""

    def __init__(
        self,
        *,
        sessions: SessionService,
        files: FileService,
        conversations: ConversationService,
        deletions: DeletionQueue,
        audit: AuditService,
        journal: ErasureJournal,
        clock: Clock,
    ) -> None:
        self.sessions = sessions
        self.files = files
        self.deletions = deletions
        self.conversations = conversations
        self.audit = audit
        self.journal = journal
        self.clock = clock

    async def erase(
        self, session: SessionSnapshot, *, db: AsyncSession, ctx: RequestContext, by: ErasedBy
    ) -> Erasure:
        """Erase a session the caller holds locked, and the sessions it replaced by resets.

        The replaced ones are linked to it (`previous_session_id`, the superseded event) and
        the browser proved it held them, so they are the same visitor's: leaving them would
        leave their files and details linkable to the erased one. Storage is purged once
        this unit of work has committed (`Erasure.storage_reachable` says how it went).
        """
        lineage = await self.sessions.lineage(session, db=db, limit=MAX_PREVIOUS_SESSIONS)
        erasure = Erasure()
        await self._erase_one(erasure, session, db=db, ctx=ctx, by=by, of=None)
        for previous_id in lineage:
            previous = await self.sessions.get(previous_id, db=db, lock=True)
            if previous is not None:
                await self._erase_one(erasure, previous, db=db, ctx=ctx, by=by, of=session.id)
        after_commit_await(db, lambda: self._purge_storage(erasure))
        if not is_postgres(db):  # no erased byte may stay behind in SQLite's WAL
            engine = db.bind
            assert isinstance(engine, AsyncEngine)
            after_commit_await(db, lambda: scrub_sqlite(engine))
        return erasure

    async def _erase_one(
        self,
        erasure: Erasure,
        session: SessionSnapshot,
        *,
        db: AsyncSession,
        ctx: RequestContext,
        by: ErasedBy,
        of: uuid.UUID | None,
    ) -> None:
        """The row (its files, conversations and messages go with it), then the event; its
        storage prefixes are queued for deletion in the same unit of work."""
        stored = await self.files.list(session, db=db)
        files = len(stored)
        messages = await self.conversations.message_count(session, db=db)
        await self.sessions.remove(session.id, db=db)
        deletions = session_objects(
            session.storage_id,
            last_slot_at=max((file.created_at for file in stored), default=None),
            now=self.clock(),
            slot_ttl=self.deletions.slot_ttl,
        )
        erasure.queued += await self.deletions.queue(deletions, db=db)
        erasure.deletions += deletions
        details: dict[str, object] = {"by": by, "files": files, "messages": messages}
        if of is not None:
            details["replaced_by"] = str(of)  # erased with the session that replaced it
        await self.audit.record(
            EventType.SESSION_ERASED, db=db, ctx=ctx, session_id=session.id, details=details
        )
        log.info("session_erased", session_id=str(session.id), by=by)
        erasure.files += files
        erasure.erased.append(session)

    async def _purge_storage(self, erasure: Erasure) -> None:
        """After the commit: every object of the erased sessions, then the journal entries."""
        deleted = await self.deletions.delete_now(erasure.deletions, erasure.queued)
        if deleted is None:  # the queued prefixes stay: cleanup purges them
            erasure.storage_reachable = False
            log.warning("erasure_left_orphans", sessions=len(erasure.erased))
            return
        erasure.objects_deleted = deleted
        erasure.storage_reachable = True
        erased_ids = [session.id for session in erasure.erased]
        await self.journal.record(erased_ids, erased_at=self.clock())


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
