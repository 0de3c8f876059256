"""Upload rules: slots, completion checks, listing, deletion, downloads.

No SQL and no HTTP types here. One instance per process; the unit of work is passed to
each call (`db=`), and each change is audited in it. Callers hold the session's lock
(`SessionService.hold(lock=True)`) for every change.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from session_service.audit.events import EventType
from session_service.audit.service import AuditService
from session_service.core.clock import Clock
from session_service.core.context import RequestContext
from session_service.core.db import after_commit_await
from session_service.core.settings import Settings
from session_service.deletions.service import DeletionQueue
from session_service.deletions.targets import file_objects
from session_service.files.completion import Completion, UploadChecker
from session_service.files.errors import (
    FileLimitReached,
    FileNotFound,
    FileNotUploaded,
    FileTooLarge,
    QuotaExceeded,
    UnsupportedContentType,
    UploadRejected,
)
from session_service.files.models import FileStatus
from session_service.files.names import incoming_key, promoted_key, storage_key
from session_service.files.repository import FileRepository
from session_service.files.schemas import UploadCreate
from session_service.files.snapshot import FileSnapshot
from session_service.sessions.snapshot import SessionSnapshot
from session_service.storage.base import ObjectStore, UploadSlot

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class IssuedSlot:
    """A pending file and where the browser posts it."""

    file: FileSnapshot
    slot: UploadSlot


@dataclass(frozen=True, slots=True)
class IssuedDownload:
    """A short-lived download URL."""

    url: str
    expires_at: datetime


class FileService:
    """A session's uploads, in the request's unit of work."""

    def __init__(
        self,
        *,
        store: ObjectStore,
        checker: UploadChecker,
        deletions: DeletionQueue,
        audit: AuditService,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self.store = store
        self.checker = checker
        self.deletions = deletions
        self.audit = audit
        self.settings = settings
        self.clock = clock

    async def issue_slot(
        self,
        session: SessionSnapshot,
        request: UploadCreate,
        *,
        db: AsyncSession,
        ctx: RequestContext,
    ) -> IssuedSlot:
        """Record a pending file and sign a form that accepts exactly it."""
        storage = self.settings.storage
        if request.content_type not in storage.upload_allowed_types:
            raise UnsupportedContentType(
                f"Only {', '.join(storage.upload_allowed_types)} can be uploaded.",
                extra={"allowed": storage.upload_allowed_types},
            )
        if request.size > storage.upload_max_bytes:
            raise FileTooLarge(
                f"Files may be at most {storage.upload_max_bytes} bytes.",
                extra={"max_bytes": storage.upload_max_bytes},
            )
        files = FileRepository(db)
        count, used = await files.usage(session.id)
        if count >= storage.upload_max_files:
            raise FileLimitReached(
                f"A session may hold at most {storage.upload_max_files} files.",
                extra={"max_files": storage.upload_max_files},
            )
        if used + request.size > storage.upload_session_quota_bytes:
            raise QuotaExceeded(
                f"This file would take the session past its {storage.upload_session_quota_bytes}"
                " byte quota.",
                extra={
                    "quota_bytes": storage.upload_session_quota_bytes,
                    "used_bytes": used,
                },
            )
        now = self.clock()
        file_id = uuid.uuid4()
        file = FileSnapshot(
            id=file_id,
            session_id=session.id,
            storage_key=storage_key(session.storage_id, file_id),
            original_name=request.name,
            content_type=request.content_type,
            declared_size=request.size,
            stored_size=None,
            status=FileStatus.PENDING,
            rejection_reason=None,
            created_at=now,
            updated_at=now,
            uploaded_at=None,
        )
        await files.insert(file)
        # Signed last: if storage fails, the transaction rolls back and no row remains.
        # The form writes to quarantine, never to where downloads read (see files/names.py).
        slot = await self.store.upload_slot(
            incoming_key(file.storage_key),
            content_type=request.content_type,
            max_size=request.size,
            expires_in=storage.upload_url_ttl,
        )
        await self.audit.record(
            EventType.FILE_SLOT_ISSUED,
            db=db,
            ctx=ctx,
            session_id=session.id,
            details={
                "file_id": str(file_id),
                "content_type": request.content_type,
                "size": request.size,
            },
        )
        return IssuedSlot(file=file, slot=slot)

    async def complete(
        self, session: SessionSnapshot, file_id: uuid.UUID, *, db: AsyncSession, ctx: RequestContext
    ) -> Completion:
        """Complete a pending upload once this unit of work has committed; idempotent.

        Here only the database is read: the file must be the caller's and not rejected. An
        uploaded file is answered as it is. A pending one is copied out of quarantine and
        checked by `UploadChecker` after the commit, with no connection held while storage
        works (see files/completion.py); the returned `Completion` then holds the file, or
        `Rejected`, committed as such and answered as a 422.
        """
        file = await self._get(FileRepository(db), session, file_id)
        if file.status == FileStatus.UPLOADED:
            return Completion(file)
        if file.status == FileStatus.REJECTED:
            raise UploadRejected(file.rejection_reason or "rejected", "This upload was rejected.")
        completion = Completion()
        after_commit_await(db, partial(self.checker.check, completion, file, ctx))
        return completion

    async def uploaded_ids(
        self, session: SessionSnapshot, file_ids: list[uuid.UUID], *, db: AsyncSession
    ) -> set[uuid.UUID]:
        """Which of `file_ids` are uploaded files of the session (to attach to a message)."""
        return await FileRepository(db).uploaded_ids(session.id, file_ids)

    async def list(self, session: SessionSnapshot, *, db: AsyncSession) -> Sequence[FileSnapshot]:
        """The session's files, oldest first."""
        return await FileRepository(db).list(session.id)

    async def delete(
        self, session: SessionSnapshot, file_id: uuid.UUID, *, db: AsyncSession, ctx: RequestContext
    ) -> None:
        """Delete the row (audited) and queue its objects; they go once that has committed.

        Storage is called after the commit, never inside the transaction: a slow store
        must not hold a connection and the session's lock, nor commit the audit event
        late. If storage fails, the queued deletions stay and cleanup makes them; the
        holder's answer is the same.
        """
        files = FileRepository(db)
        file = await self._get(files, session, file_id, for_update=True)
        await files.delete(file.id)
        await self.audit.record(
            EventType.FILE_DELETED,
            db=db,
            ctx=ctx,
            session_id=session.id,
            details={"file_id": str(file.id)},
        )
        objects = file_objects(
            file.storage_key,
            issued_at=file.created_at,
            now=self.clock(),
            slot_ttl=self.settings.storage.upload_url_ttl,
        )
        await self.deletions.delete_after_commit(objects, db=db)

    async def download(
        self, session: SessionSnapshot, file_id: uuid.UUID, *, db: AsyncSession, ctx: RequestContext
    ) -> IssuedDownload:
        """A short-lived URL serving the file as an attachment under its own name."""
        file = await self._get(FileRepository(db), session, file_id)
        if file.status != FileStatus.UPLOADED:
            raise FileNotUploaded("Only a completed upload can be downloaded.")
        ttl = self.settings.storage.download_url_ttl
        url = await self.store.download_url(
            file.storage_key, filename=file.original_name, expires_in=ttl
        )
        await self.audit.record(
            EventType.FILE_DOWNLOAD_ISSUED,
            db=db,
            ctx=ctx,
            session_id=session.id,
            details={"file_id": str(file.id)},
        )
        return IssuedDownload(url=url, expires_at=self.clock() + ttl)

    async def awaits_upload(self, form_key: str, *, db: AsyncSession) -> bool:
        """Whether a form writing to `form_key` still belongs to a pending file.

        A form replayed after completion, deletion or erasure does not.
        """
        return await FileRepository(db).is_pending(promoted_key(form_key))

    async def stored_name(self, key: str, *, db: AsyncSession) -> str | None:
        """The original name of the uploaded file stored under `key` (None: no such file)."""
        return await FileRepository(db).name_for_key(key)

    async def download_url(self, file: FileSnapshot) -> str | None:
        """A fresh download URL for an uploaded file (None without content), for exports."""
        if file.status != FileStatus.UPLOADED:
            return None
        return await self.store.download_url(
            file.storage_key,
            filename=file.original_name,
            expires_in=self.settings.storage.download_url_ttl,
        )

    async def _get(
        self,
        files: FileRepository,
        session: SessionSnapshot,
        file_id: uuid.UUID,
        *,
        for_update: bool = False,
    ) -> FileSnapshot:
        file = await files.get(file_id, session_id=session.id, for_update=for_update)
        if file is None:
            raise FileNotFound("No such file in this session.")
        return file
