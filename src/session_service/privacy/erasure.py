"""GDPR erasure: a session's personal data, file rows and stored objects, at once and for good.

Objects go first (everything under the session's storage prefix, including objects no row
knows). If storage is unreachable, the database part still commits: the session row is gone,
so its prefix belongs to no live session and orphan cleanup removes it (SPEC §5); the
answer says so. The audit event keeps the session id and counts, nothing personal.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from session_service.audit.events import EventType
from session_service.audit.service import AuditService
from session_service.core.context import RequestContext
from session_service.files.names import session_prefix
from session_service.files.repository import FileRepository
from session_service.sessions.errors import SessionNotFound
from session_service.sessions.repository import SessionRepository
from session_service.storage.base import ObjectStore, StorageUnavailable

log = structlog.get_logger(__name__)

ErasedBy = Literal["holder", "service"]


@dataclass(frozen=True, slots=True)
class Erasure:
    """What an erasure removed, and whether storage still has objects to clean up."""

    files: int
    objects_deleted: int
    storage_reachable: bool


class SessionEraser:
    """Erases one session in the request's unit of work."""

    def __init__(self, db: AsyncSession, *, store: ObjectStore, audit: AuditService) -> None:
        self.db = db
        self.sessions = SessionRepository(db)
        self.files = FileRepository(db)
        self.store = store
        self.audit = audit

    async def erase(self, session_id: uuid.UUID, *, ctx: RequestContext, by: ErasedBy) -> Erasure:
        """Erase the session at the request of its holder or of a service."""
        session = await self.sessions.get(session_id)
        if session is None:
            raise SessionNotFound("No session with this id.")
        files = len(await self.files.list(session_id))
        deleted, reachable = 0, True
        try:
            keys = [
                info.key
                async for info in self.store.list_prefix(session_prefix(session.storage_id))
            ]
            await self.store.delete_many(keys)
            deleted = len(keys)
        except StorageUnavailable:
            reachable = False
            log.warning("erasure_left_orphans", session_id=str(session_id))
        await self.sessions.delete(session_id)
        await self.audit.record(
            self.db,
            EventType.SESSION_ERASED,
            ctx=ctx,
            session_id=session_id,
            details={
                "by": by,
                "files": files,
                "objects_deleted": deleted,
                "storage": "deleted" if reachable else "unreachable_left_for_cleanup",
            },
        )
        log.info("session_erased", session_id=str(session_id), by=by)
        return Erasure(files=files, objects_deleted=deleted, storage_reachable=reachable)
