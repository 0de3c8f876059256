"""One cleanup run (SPEC §5): what goes, in which order, and how each deletion is proven.

Order: expired sessions (rows, then their objects), abandoned pending uploads (rows, then
objects), the deletion queue, the full sweep when it is due, old audit events, old erasure
journal entries, then expired idempotency keys (a session's own keys already went with it).
Rows go first, in a transaction with their audit events and the deletions they leave
(`deletion_queue`); objects follow, and their queue rows go once they are deleted. If
storage fails there, the rows stay and the queue step (this run's, or the next one's)
deletes them: a storage outage delays deletion but never loses track of an object.

The queue holds every deletion a change left behind: files deleted, sessions erased or
reset, completed uploads' quarantine, and whatever a failed storage call left. So a run's
cost follows the work it has, not the number of stored objects: with nothing queued or
expired it makes no storage call at all.

The full sweep is the safety net for objects no row knows (a process stopped between a
storage write and its commit): every ORPHAN_FULL_SWEEP_INTERVAL (remembered in
`cleanup_marks`, so every instance and restart keeps to it), or when asked for, storage is
listed under `uploads/` and `incoming/` a page at a time. Orphans are objects under
`uploads/` older than ORPHAN_MIN_AGE that no file row of a live session refers to, and
objects in upload quarantine older than a form's life plus UPLOAD_GRACE. Each page's
candidates are checked against a fresh database query right before they are deleted, so an
object that became wanted after the listing is kept.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from session_service.audit.events import EventType
from session_service.audit.models import Outcome
from session_service.audit.retention import purge_before
from session_service.audit.service import AuditService
from session_service.cleanup.models import Mark
from session_service.cleanup.report import CleanupReport
from session_service.cleanup.repository import CleanupRepository
from session_service.core.context import RequestContext
from session_service.core.db import job_scope
from session_service.core.settings import Settings
from session_service.deletions.repository import DeletionRepository, Queued
from session_service.deletions.targets import Deletion, file_objects, is_prefix
from session_service.files.models import FileStatus
from session_service.files.names import (
    INCOMING_PREFIX,
    UPLOADS_PREFIX,
    incoming_key,
    object_ref,
    prefix_storage_id,
)
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
        full_sweep: bool = False,
        report: CleanupReport | None = None,
    ) -> CleanupReport:
        """Delete (or, dry, list) everything due at `now`; audit a summary either way.

        `full_sweep` lists all of storage for orphans even if the last sweep is recent.
        Fills `report` as it goes (the admin status endpoint shows it while it runs).
        """
        report = report or CleanupReport(dry_run=dry_run, started_at=now)
        report.full_sweep.forced = full_sweep
        started = time.perf_counter()
        for step, action in (
            ("expired_sessions", self._expired_sessions),
            ("abandoned_uploads", self._abandoned_uploads),
            ("queued_deletions", self._queued_deletions),
            ("orphaned_objects", self._full_sweep),
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
                files = await repo.stored_files(ids)
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
                                {"status": row["status"], "files": len(files.get(row["id"], []))},
                            )
                            for row in found
                            if row["id"] in deleted
                        ],
                    )
                left = [file for i in ids if i in deleted for file in files.get(i, [])]
                deletions, queued = await self._queue(db, left, now=now, dry_run=dry_run)
            report.expired_sessions.add([str(i) for i in ids if i in deleted], limit=self.limit)
            self._count("sessions", len(deleted), dry_run)
            if await self._delete_now(
                report, deletions, queued, now=now, step="expired_sessions", dry_run=dry_run
            ):
                objects = [object_ref(file["storage_key"]) for file in left]
                report.session_objects.add(objects, limit=self.limit)
                self._quarantined(report, left)

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
                left = [
                    {**row, "status": FileStatus.PENDING} for row in found if row["id"] in deleted
                ]
                deletions, queued = await self._queue(db, left, now=now, dry_run=dry_run)
            report.abandoned_uploads.add([str(i) for i in ids if i in deleted], limit=self.limit)
            self._count("uploads", len(deleted), dry_run)
            # A pending file may have no object (the browser never posted it): absent is fine.
            if await self._delete_now(
                report, deletions, queued, now=now, step="abandoned_uploads", dry_run=dry_run
            ):
                self._quarantined(report, left)

    async def _queue(
        self, db: AsyncSession, files: list[dict[str, Any]], *, now: datetime, dry_run: bool
    ) -> tuple[list[Deletion], list[int]]:
        """Queue the objects of files whose rows this unit of work deletes (dry: none)."""
        deletions = [
            deletion
            for file in files
            for deletion in file_objects(
                file["storage_key"],
                issued_at=file["created_at"],
                now=now,
                slot_ttl=self.settings.storage.upload_url_ttl,
                # A completed upload's quarantine was queued by its completion.
                quarantine=file["status"] == FileStatus.PENDING,
            )
        ]
        if dry_run:
            return deletions, []
        return deletions, await DeletionRepository(db).add(deletions, now=now)

    def _quarantined(self, report: CleanupReport, files: list[dict[str, Any]]) -> None:
        """Report the quarantine of uploads never completed, now deleted."""
        stale = [
            object_ref(incoming_key(file["storage_key"]))
            for file in files
            if file["status"] == FileStatus.PENDING
        ]
        report.stale_quarantine.add(stale, limit=self.limit)

    async def _delete_now(
        self,
        report: CleanupReport,
        deletions: list[Deletion],
        queued: list[int],
        *,
        now: datetime,
        step: str,
        dry_run: bool,
    ) -> bool:
        """Delete what a committed batch queued, and forget its due rows; False if storage
        failed (the rows stay for the queue step)."""
        keys = sorted({deletion.target for deletion in deletions})
        if not await self._delete_objects(report, keys, step=step, dry_run=dry_run):
            return False
        if queued:
            async with job_scope(self.maker) as db:
                await DeletionRepository(db).settle(queued, now=now)
        return True

    async def _queued_deletions(
        self, report: CleanupReport, *, now: datetime, ctx: RequestContext, dry_run: bool
    ) -> None:
        """Make the deletions queued and due, a batch of rows at a time; a row goes once its
        deletion succeeded. While storage fails, the rest waits for the next run."""
        after = 0
        while True:
            async with job_scope(self.maker) as db:
                rows = await DeletionRepository(db).due(now=now, after=after, limit=self.batch)
                if not rows:
                    return
                after = rows[-1].id
                claimed = await self._claimed(CleanupRepository(db), rows)
            done = [row.id for row in rows if row.target in claimed]
            keys = sorted({row.target for row in rows if not is_prefix(row.target)} - claimed)
            prefixes = sorted({row.target for row in rows if is_prefix(row.target)} - claimed)
            deleted: list[str] = []
            failed = False
            try:
                if keys and not dry_run:
                    await self.store.delete_many(keys)
                deleted += keys
                for prefix in prefixes:
                    if not dry_run:
                        await self.store.purge_prefix(prefix)
                    deleted.append(prefix)
            except Exception as exc:
                log.warning(
                    "cleanup_storage_failed", step="queued_deletions", error=type(exc).__name__
                )
                report.error("queued_deletions", exc)
                failed = True
            went = set(deleted)
            done += [row.id for row in rows if row.target in went]
            if not dry_run:
                async with job_scope(self.maker) as db:
                    await DeletionRepository(db).remove(done)
            report.queued_deletions.add(
                [object_ref(target) for target in deleted], limit=self.limit
            )
            self._count("queued_deletions", len(deleted), dry_run)
            if failed:
                return

    async def _claimed(self, repo: CleanupRepository, rows: list[Queued]) -> set[str]:
        """The queued targets a live session's file or prefix refers to now: never deleted
        (their rows go; whatever lets go of them later queues them again)."""
        keys = [row.target for row in rows if not is_prefix(row.target)]
        claimed = await repo.wanted_keys(keys) if keys else set()
        storage_ids = {
            row.target: storage_id
            for row in rows
            if is_prefix(row.target) and (storage_id := prefix_storage_id(row.target)) is not None
        }
        if storage_ids:
            live = await repo.live_storage_ids(sorted(set(storage_ids.values())))
            claimed |= {target for target, storage_id in storage_ids.items() if storage_id in live}
        return claimed

    async def _full_sweep(
        self, report: CleanupReport, *, now: datetime, ctx: RequestContext, dry_run: bool
    ) -> None:
        """List all of storage for orphans when the interval has passed since the last full
        sweep (none yet: now), or when asked for; remember when it ran."""
        interval = self.settings.cleanup.orphan_full_sweep_interval
        sweep = report.full_sweep
        async with job_scope(self.maker) as db:
            sweep.previous_at = await CleanupRepository(db).mark(Mark.FULL_SWEEP)
        due = bool(interval) and (sweep.previous_at is None or sweep.previous_at + interval <= now)
        if not (due or sweep.forced):
            if interval and sweep.previous_at is not None:
                sweep.next_due_at = sweep.previous_at + interval
            return
        sweep.ran = True
        await self._orphaned_objects(report, now=now, ctx=ctx, dry_run=dry_run)
        if not dry_run:
            async with job_scope(self.maker) as db:
                await CleanupRepository(db).set_mark(Mark.FULL_SWEEP, now)
        sweep.next_due_at = now + interval if interval else None

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
                    await self._delete_orphans(report, page, now=now, ctx=ctx, dry_run=dry_run)
                    page = []
            if page:
                await self._delete_orphans(report, page, now=now, ctx=ctx, dry_run=dry_run)

    async def _delete_orphans(
        self,
        report: CleanupReport,
        candidates: list[str],
        *,
        now: datetime,
        ctx: RequestContext,
        dry_run: bool,
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
            # Known now: queued, they need no listing to be found again.
            async with job_scope(self.maker) as db:
                await DeletionRepository(db).add([Deletion(key, now) for key in orphans], now=now)
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
        before = now - retention
        async with job_scope(self.maker) as db:
            oldest = await CleanupRepository(db).mark(Mark.JOURNAL_OLDEST)
        if oldest is not None and oldest >= before:
            return  # no entry is old enough yet: the journal need not be listed
        pruned = await self.journal.prune(before=before, dry_run=dry_run)
        report.erasure_journal.add(pruned.session_ids, limit=self.limit)
        self._count("erasure_journal", len(pruned.session_ids), dry_run)
        if not dry_run:
            # Entries written from now on are younger than now.
            kept = now if pruned.oldest_kept is None else min(pruned.oldest_kept, now)
            async with job_scope(self.maker) as db:
                await CleanupRepository(db).set_mark(Mark.JOURNAL_OLDEST, kept)

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
