"""Completing an upload: storage first, with no database connection held, then one short write.

Completion copies the upload out of quarantine and reads its first bytes, two calls to the
store that may be slow or hang. They run after the request's unit of work has committed
(it only checked that the file is the caller's and still pending) and before the answer
goes out; a second unit of work then records the outcome under the file row's lock. So a
slow store holds no pooled connection and no lock, and the audit event commits at once.

Each completion checks a copy under a key of its own (`files/names.checked_key`): two
completions racing, or a form posted again meanwhile, cannot change what the winner
checked. The outcome's unit of work queues what it leaves behind (the quarantined upload,
due once its form has expired, and a rejected copy), deleted once it has committed. The
loser's copy belongs to no file row and is deleted at once (queued if storage fails);
a copy left by a process that stopped in between is found by cleanup's full sweep. The
quarantined upload stays until the outcome is committed, so completing again after any
failure checks it again.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from session_service.audit.events import EventType
from session_service.audit.models import Outcome
from session_service.audit.service import AuditService
from session_service.core.clock import Clock
from session_service.core.context import RequestContext
from session_service.core.db import job_scope
from session_service.deletions.service import DeletionQueue
from session_service.deletions.targets import Deletion, form_expiry
from session_service.files import signatures
from session_service.files.errors import FileNotFound, UploadMissing, UploadRejected
from session_service.files.models import FileStatus
from session_service.files.names import checked_key, incoming_key, object_ref
from session_service.files.repository import FileRepository
from session_service.files.snapshot import FileSnapshot
from session_service.storage.base import ObjectInfo, ObjectMissing, ObjectStore

log = structlog.get_logger(__name__)

_REJECTION_DETAILS = {
    "size_mismatch": "The stored file's size differs from the size declared; it was deleted.",
    "type_mismatch": "The stored content type differs from the declared one; it was deleted.",
    "signature_mismatch": "The file's content does not match its declared type; it was deleted.",
}


@dataclass(frozen=True, slots=True)
class Rejected:
    """A completion whose object failed a check: committed as such, answered as a 422."""

    reason: str
    file: FileSnapshot

    def error(self) -> UploadRejected:
        """The refusal the caller answers with, once the rejection is committed."""
        return UploadRejected(self.reason, _REJECTION_DETAILS[self.reason])


@dataclass(slots=True)
class Completion:
    """The outcome of one completion: set at once, or by `UploadChecker.check` after commit."""

    outcome: FileSnapshot | Rejected | None = None

    def result(self) -> FileSnapshot | Rejected:
        """The outcome; only asked for once the request's unit of work is over."""
        assert self.outcome is not None, "completion read before its check ran"
        return self.outcome


class UploadChecker:
    """Copies, checks and records one upload; one per process (a job: it opens its own
    unit of work for the outcome, after the request's has committed)."""

    def __init__(
        self,
        *,
        store: ObjectStore,
        deletions: DeletionQueue,
        audit: AuditService,
        maker: async_sessionmaker[AsyncSession],
        clock: Clock,
    ) -> None:
        self.store = store
        self.deletions = deletions
        self.audit = audit
        self.maker = maker
        self.clock = clock

    async def check(self, completion: Completion, file: FileSnapshot, ctx: RequestContext) -> None:
        """Copy the upload to a key of its own, check it there, and record the outcome."""
        incoming = incoming_key(file.storage_key)
        copy = checked_key(file.storage_key)
        try:
            await self.store.copy(incoming, copy)
        except ObjectMissing:
            raise UploadMissing(
                "The file has not arrived in storage yet; upload it first."
            ) from None
        try:
            info = await self.store.inspect(copy, first_bytes=signatures.LONGEST_SIGNATURE)
            if info is None:  # gone between the copy and the read: a purge of the session
                raise UploadMissing("The file has not arrived in storage yet; upload it first.")
            async with job_scope(self.maker) as db:
                outcome = await self._record(
                    file, copy, info, _mismatch(file, info), db=db, ctx=ctx
                )
                # What this completion's outcome leaves behind, queued with it.
                left = self._left_behind(file, copy, outcome)
                queued = await self.deletions.queue(left, db=db)
        except Exception:
            await self.deletions.delete_or_queue([copy])
            raise
        completion.outcome = outcome
        if left:
            await self.deletions.delete_now(left, queued)
        else:  # another completion recorded the outcome: this copy is nobody's
            await self.deletions.delete_or_queue([copy])

    def _left_behind(
        self, file: FileSnapshot, copy: str, outcome: FileSnapshot | Rejected
    ) -> list[Deletion]:
        """The quarantined upload (due once its form has expired) and a rejected copy, when
        this completion recorded the outcome; nothing when another one did."""
        if isinstance(outcome, FileSnapshot) and outcome.storage_key != copy:
            return []
        now = self.clock()
        due = form_expiry(file.created_at, now=now, slot_ttl=self.deletions.slot_ttl)
        left = [Deletion(incoming_key(file.storage_key), due)]
        return [*left, Deletion(copy, now)] if isinstance(outcome, Rejected) else left

    async def _record(
        self,
        file: FileSnapshot,
        copy: str,
        info: ObjectInfo,
        reason: str | None,
        *,
        db: AsyncSession,
        ctx: RequestContext,
    ) -> FileSnapshot | Rejected:
        """The outcome, unless another completion recorded one first (then that one)."""
        files = FileRepository(db)
        current = await files.get(file.id, session_id=file.session_id, for_update=True)
        if current is None:  # deleted or erased while its upload was checked
            raise FileNotFound("No such file in this session.")
        if current.status == FileStatus.UPLOADED:
            return current
        if current.status == FileStatus.REJECTED:
            raise UploadRejected(
                current.rejection_reason or "rejected", "This upload was rejected."
            )
        now = self.clock()
        details = {"file_id": str(file.id), "stored_size": info.size}
        if reason is not None:
            rejected = await files.mark_rejected(current, reason=reason, now=now)
            await self.audit.record(
                EventType.FILE_REJECTED,
                db=db,
                ctx=ctx,
                session_id=file.session_id,
                outcome=Outcome.FAILURE,
                details={**details, "reason": reason},
            )
            return Rejected(reason=reason, file=rejected)
        uploaded = await files.mark_uploaded(
            current, storage_key=copy, stored_size=info.size, now=now
        )
        await self.audit.record(
            EventType.FILE_UPLOADED,
            db=db,
            ctx=ctx,
            session_id=file.session_id,
            details={**details, "promoted_from": object_ref(incoming_key(file.storage_key))},
        )
        return uploaded


def _mismatch(file: FileSnapshot, info: ObjectInfo) -> str | None:
    """Why the stored object is not the file declared, or None."""
    if info.size != file.declared_size:
        return "size_mismatch"
    if info.content_type != file.content_type:
        return "type_mismatch"
    if not signatures.matches(file.content_type, info.first_bytes):
        return "signature_mismatch"
    return None
