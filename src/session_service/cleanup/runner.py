"""Running cleanup: one run at a time across instances, periodically and on demand.

Exclusion is a PostgreSQL session-level advisory lock held on a connection of its own for
the whole run (a run spans many transactions), so a second instance, a CLI call or an
admin call during a run skips instead of racing it. On SQLite (one process) a process
lock does the same. Runs happen in a background task, never on the request path.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from session_service.cleanup.report import CleanupReport
from session_service.cleanup.service import CleanupService
from session_service.core.clock import Clock
from session_service.core.context import RequestContext
from session_service.notify.alert import Alert
from session_service.notify.notifier import AlertNotifier

log = structlog.get_logger(__name__)

CLEANUP_LOCK_KEY = 0x5E55_0003


def job_context() -> RequestContext:
    """Who a scheduled or command-line run is, in its audit events."""
    return RequestContext(
        request_id=f"cleanup-{uuid.uuid4().hex[:16]}", client_ip=None, user_agent="cleanup"
    )


class CleanupRunner:
    """Runs `CleanupService` exclusively, alerts on errors and unusually large runs."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        service: CleanupService,
        clock: Clock,
        notifier: AlertNotifier | None,
        alert_threshold: int,
    ) -> None:
        self.engine = engine
        self.service = service
        self.clock = clock
        self.notifier = notifier
        self.alert_threshold = alert_threshold
        self._local = asyncio.Lock()

    async def run_once(self, *, dry_run: bool, ctx: RequestContext) -> CleanupReport | None:
        """One run now; None when another run (here or in another instance) holds the lock."""
        async with self._exclusive() as acquired:
            if not acquired:
                log.info("cleanup_skipped", reason="another run holds the lock")
                return None
            report = await self.service.run(now=self.clock(), ctx=ctx, dry_run=dry_run)
        log.info(
            "cleanup_finished",
            dry_run=dry_run,
            seconds=report.seconds,
            errors=len(report.errors),
            **report.counts(),
        )
        if not dry_run:
            self._alert(report)
        return report

    async def run_forever(self, *, interval: timedelta, stop: asyncio.Event) -> None:
        """Run every `interval` until `stop` is set; a run in progress is finished first.

        A failed run is logged and the next one comes.
        """
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval.total_seconds())
            if stop.is_set():
                return
            try:
                await self.run_once(dry_run=False, ctx=job_context())
            except Exception:
                log.exception("cleanup_run_failed")

    @contextlib.asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[bool]:
        if self._local.locked():
            yield False
            return
        async with self._local:
            if self.engine.dialect.name != "postgresql":
                yield True
                return
            async with self.engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                locked = await conn.scalar(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": CLEANUP_LOCK_KEY}
                )
                if not locked:
                    yield False
                    return
                try:
                    yield True
                finally:
                    await conn.execute(
                        text("SELECT pg_advisory_unlock(:key)"), {"key": CLEANUP_LOCK_KEY}
                    )

    def _alert(self, report: CleanupReport) -> None:
        if self.notifier is None or not self.notifier.enabled:
            return
        counts = report.counts()
        if report.errors:
            failed = sorted({f"{error['step']}:{error['error']}" for error in report.errors})
            self.notifier.notify(
                Alert(
                    key="cleanup.errors:" + ",".join(failed),
                    summary=f"Cleanup run had {len(report.errors)} error(s): {', '.join(failed)}",
                    occurred_at=report.started_at,
                    source="cleanup",
                    details={"counts": counts, "errors": report.errors},
                )
            )
        if report.deletions > self.alert_threshold:
            self.notifier.notify(
                Alert(
                    key="cleanup.large_run",
                    summary=f"Cleanup deleted {report.deletions} items "
                    f"(threshold {self.alert_threshold})",
                    occurred_at=report.started_at,
                    source="cleanup",
                    details={"counts": counts},
                )
            )
