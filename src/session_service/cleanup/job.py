"""One cleanup run (SPEC §5): what goes, in which order, and how each deletion is proven.

Order: expired sessions (rows, then their objects), abandoned pending uploads (rows, then
objects), orphaned objects, old audit events, old erasure journal entries, then expired
idempotency keys (a session's own keys already went with it). Rows go
first, in a transaction with their audit events; objects follow. If storage fails there,
the objects belong to no live session any more, so the orphan sweep (this run's, or the
next one's) takes them: a storage outage delays deletion but never loses track of an object.

Orphans are objects under `uploads/` older than ORPHAN_MIN_AGE that no file row of a
live session refers to, and objects in upload quarantine (`incoming/`) older than a form's
life plus UPLOAD_GRACE: by then their file was completed (its object moved out), abandoned,
or the object is a replayed form's, which nothing may ever serve. Storage is listed a page
at a time; each page's candidates are checked against a fresh database query right before
they are deleted, so an object that became wanted after the listing is kept.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from session_service.audit.events import EventType
from session_service.audit.models import Outcome
from session_service.audit.retention import purge_before
from session_service.audit.service import AuditService
from session_service.cleanup.report import CleanupReport
from session_service.cleanup.repository import CleanupRepository
from session_service.core.context import RequestContext
from session_service.core.db import job_scope
from session_service.core.settings import Settings
from session_service.files.names import INCOMING_PREFIX, UPLOADS_PREFIX, incoming_key, object_ref
from session_service.idempotency.repository import IdempotencyRepository
from session_service.privacy.journal import ErasureJournal
from session_service.storage.base import ObjectStore

log = structlog.get_logger(__name__)


class CleanupJob:
    """The steps of one cleanup run, a unit of work per batch; no state between runs."""

    def __init__(
        self,
        *,
        maker: async_sessionmaker[AsyncSession],
        store: ObjectStore,
        audit: AuditService,
        journal: ErasureJournal,
        settings: Settings,
        on_deleted: Callable[[str, int], None] | None = None,
    ) -> None:
        self.maker = maker
        self.store = store
        self.audit = audit
        self.journal = journal
        self.settings = settings
        self.batch = settings.cleanup.batch_size
        self.limit = settings.cleanup.report_limit
        # Told each kind's deletions as they commit (metrics); must be cheap.
        self.on_deleted = on_deleted

    async def run(
        self,
        *,
        now: datetime,
        ctx: RequestContext,
        dry_run: bool,
        report: CleanupReport | None = None,
    ) -> CleanupReport:
        """Delete (or, dry, list) everything due at `now`; audit a summary either way.

        Fills `report` as it goes (the admin status endpoint shows it while it runs).
        """
        report = report or CleanupReport(dry_run=dry_run, started_at=now)
        started = time.perf_counter()
        for step, action in (
            ("expired_sessions", self._expired_sessions),
            ("abandoned_uploads", self._abandoned_uploads),
            ("orphaned_objects", self._orphaned_objects),
            ("audit_retention", self._audit_retention),
            ("erasure_journal", self._erasure_journal),
            ("idempotency_keys", self._idempotency_keys),
        ):
            report.step = step
            try:
                await action(report, now=now, ctx=ctx, dry_run=dry_run)
            except Exception as exc:  # one failing step never stops the others
                log.warning("cleanup_step_failed", step=step, error=type(exc).__name__)
                report.error(step, exc)
        report.step = None
        report.seconds = round(time.perf_counter() - started, 3)
        report.finished_at = self.audit.clock()
        await self._summarise(report, ctx=ctx)
        return report

    async def _expired_sessions(
        self, report: CleanupReport, *, now: datetime, ctx: RequestContext, dry_run: bool
    ) -> None:
        reset_before = now - self.settings.session_idle_ttl
        created_before = now - self.settings.session_max_age
        after: uuid.UUID | None = None
        while True:
            async with job_scope(self.maker) as db:
                repo = CleanupRepository(db)
                found = await repo.expired_sessions(
                    now=now,
                    reset_before=reset_before,
                    created_before=created_before,
                    after=after,
                    limit=self.batch,
                )
                if not found:
                    return
                after = found[-1]["id"]
                ids = [row["id"] for row in found]
                keys = await repo.file_keys(ids)
                if dry_run:
                    deleted = set(ids)
                else:
                    deleted = await repo.delete_expired_sessions(
                        ids, now=now, reset_before=reset_before, created_before=created_before
                    )
                    await self.audit.record_many(
                        EventType.SESSION_EXPIRED,
                        db=db,
                        ctx=ctx,
                        items=[
                            (
                                row["id"],
                                {"status": row["status"], "files": len(keys.get(row["id"], []))},
                            )
                            for row in found
                            if row["id"] in deleted
                        ],
                    )
            report.expired_sessions.add([str(i) for i in ids if i in deleted], limit=self.limit)
            self._count("sessions", len(deleted), dry_run)
            objects = [key for i in ids if i in deleted for key in keys.get(i, [])]
            await self._delete_objects(report, objects, step="expired_sessions", dry_run=dry_run)
            report.session_objects.add([object_ref(key) for key in objects], limit=self.limit)

    async def _abandoned_uploads(
        self, report: CleanupReport, *, now: datetime, ctx: RequestContext, dry_run: bool
    ) -> None:
        created_before = now - self.settings.cleanup.upload_grace
        after: uuid.UUID | None = None
        while True:
            async with job_scope(self.maker) as db:
                repo = CleanupRepository(db)
                found = await repo.abandoned_uploads(
                    created_before=created_before, after=after, limit=self.batch
                )
                if not found:
                    return
                after = found[-1]["id"]
                ids = [row["id"] for row in found]
                if dry_run:
                    deleted = set(ids)
                else:
                    deleted = await repo.delete_abandoned_uploads(
                        ids, created_before=created_before
                    )
                    await self.audit.record_many(
                        EventType.FILE_ABANDONED,
                        db=db,
                        ctx=ctx,
                        items=[
                            (row["session_id"], {"file_id": str(row["id"])})
                            for row in found
                            if row["id"] in deleted
                        ],
                    )
            report.abandoned_uploads.add([str(i) for i in ids if i in deleted], limit=self.limit)
            self._count("uploads", len(deleted), dry_run)
            objects = [
                key
                for row in found
                if row["id"] in deleted
                for key in (row["storage_key"], incoming_key(row["storage_key"]))
            ]
            # A pending file may have no object (the browser never posted it): absent is fine.
            await self._delete_objects(report, objects, step="abandoned_uploads", dry_run=dry_run)

    async def _orphaned_objects(
        self, report: CleanupReport, *, now: datetime, ctx: RequestContext, dry_run: bool
    ) -> None:
        quarantine = self.settings.storage.upload_url_ttl + self.settings.cleanup.upload_grace
        for prefix, old_before in (
            (UPLOADS_PREFIX, now - self.settings.cleanup.orphan_min_age),
            (INCOMING_PREFIX, now - quarantine),
        ):
            page: list[str] = []
            async for info in self.store.list_prefix(prefix):
                if info.last_modified <= old_before:
                    page.append(info.key)
                if len(page) >= self.batch:
                    await self._delete_orphans(report, page, ctx=ctx, dry_run=dry_run)
                    page = []
            if page:
                await self._delete_orphans(report, page, ctx=ctx, dry_run=dry_run)

    async def _delete_orphans(
        self, report: CleanupReport, candidates: list[str], *, ctx: RequestContext, dry_run: bool
    ) -> None:
        # The fresh check: whatever a live session's file refers to now is kept.
        async with job_scope(self.maker) as db:
            wanted = await CleanupRepository(db).wanted_keys(candidates)
        orphans = [key for key in candidates if key not in wanted]
        if not orphans:
            return
        if not await self._delete_objects(
            report, orphans, step="orphaned_objects", dry_run=dry_run
        ):
            return
        if not dry_run:
            async with job_scope(self.maker) as db:
                await self.audit.record_many(
                    EventType.STORAGE_ORPHAN_DELETED,
                    db=db,
                    ctx=ctx,
                    items=[(None, {"key": object_ref(key)}) for key in orphans],
                )
        report.orphaned_objects.add([object_ref(key) for key in orphans], limit=self.limit)
        self._count("orphaned_objects", len(orphans), dry_run)

    async def _audit_retention(
        self, report: CleanupReport, *, now: datetime, ctx: RequestContext, dry_run: bool
    ) -> None:
        retention = self.settings.cleanup.audit_retention
        if not retention:
            return
        result = await purge_before(
            self.maker, cutoff=now - retention, audit=self.audit, ctx=ctx, dry_run=dry_run
        )
        if result.events:
            report.audit_events.count += result.events
            report.audit_events.items.append(f"events up to id {result.through_event_id}")
            self._count("audit_events", result.events, dry_run)
        if not dry_run:
            # Tombstones of ended sessions are kept as long as the trail that names them.
            async with job_scope(self.maker) as db:
                forgotten = await CleanupRepository(db).purge_tombstones(
                    ended_before=now - retention
                )
            if forgotten:
                log.info("session_tombstones_purged", count=forgotten)

    async def _erasure_journal(
        self, report: CleanupReport, *, now: datetime, ctx: RequestContext, dry_run: bool
    ) -> None:
        retention = self.settings.cleanup.erasure_journal_retention
        if not retention:
            return
        pruned = await self.journal.prune(before=now - retention, dry_run=dry_run)
        report.erasure_journal.add(pruned, limit=self.limit)
        self._count("erasure_journal", len(pruned), dry_run)

    async def _idempotency_keys(
        self, report: CleanupReport, *, now: datetime, ctx: RequestContext, dry_run: bool
    ) -> None:
        """Answers kept for retries past IDEMPOTENCY_KEY_TTL: counted, never listed."""
        if dry_run:
            async with job_scope(self.maker) as db:
                report.idempotency_keys.count = await IdempotencyRepository(db).count_expired(
                    now=now
                )
            return
        while True:
            async with job_scope(self.maker) as db:
                deleted = await IdempotencyRepository(db).purge_expired(now=now, limit=self.batch)
            report.idempotency_keys.count += deleted
            self._count("idempotency_keys", deleted, dry_run)
            if deleted < self.batch:
                return

    async def _delete_objects(
        self, report: CleanupReport, keys: list[str], *, step: str, dry_run: bool
    ) -> bool:
        """Delete objects; a storage failure is reported and left to a later sweep."""
        if dry_run or not keys:
            return True
        try:
            await self.store.delete_many(keys)
        except Exception as exc:
            log.warning("cleanup_storage_failed", step=step, error=type(exc).__name__)
            report.error(step, exc)
            return False
        return True

    def _count(self, kind: str, count: int, dry_run: bool) -> None:
        if count and not dry_run and self.on_deleted is not None:
            self.on_deleted(kind, count)

    async def _summarise(self, report: CleanupReport, *, ctx: RequestContext) -> None:
        """The run's summary event, and one failure event per error."""
        async with job_scope(self.maker) as db:
            if report.errors:
                await self.audit.record_many(
                    EventType.CLEANUP_FAILED,
                    db=db,
                    ctx=ctx,
                    items=[(None, dict(error)) for error in report.errors],
                    outcome=Outcome.FAILURE,
                )
            await self.audit.record(
                EventType.CLEANUP_COMPLETED,
                db=db,
                ctx=ctx,
                outcome=Outcome.FAILURE if report.errors else Outcome.SUCCESS,
                details={
                    "dry_run": report.dry_run,
                    "counts": report.counts(),
                    "seconds": report.seconds,
                    "errors": len(report.errors),
                },
            )
