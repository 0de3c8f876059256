"""Running cleanup: one run at a time across instances, periodically and on demand.

Exclusion is `advisory_lock_for_run` (a run spans many transactions), so a second
instance, a CLI call or an admin call during a run skips instead of racing it. Runs
happen in a background task, never on the request path.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from session_service.cleanup.job import CleanupJob
from session_service.cleanup.report import CleanupReport
from session_service.core.clock import Clock
from session_service.core.context import RequestContext
from session_service.core.locks import LockKey, advisory_lock_for_run
from session_service.notify.alert import Alert
from session_service.notify.notifier import AlertNotifier

log = structlog.get_logger(__name__)


def job_context() -> RequestContext:
    """Who a scheduled or command-line run is, in its audit events."""
    return RequestContext(
        request_id=f"cleanup-{uuid.uuid4().hex[:16]}", client_ip=None, user_agent="cleanup"
    )


class CleanupRunner:
    """Runs `CleanupJob` exclusively, alerts on errors and unusually large runs."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        job: CleanupJob,
        clock: Clock,
        notifier: AlertNotifier | None,
        alert_threshold: int,
    ) -> None:
        self.engine = engine
        self.job = job
        self.clock = clock
        self.notifier = notifier
        self.alert_threshold = alert_threshold

    async def run_once(self, *, dry_run: bool, ctx: RequestContext) -> CleanupReport | None:
        """One run now; None when another run (here or in another instance) holds the lock."""
        async with advisory_lock_for_run(self.engine, LockKey.CLEANUP) as acquired:
            if not acquired:
                log.info("cleanup_skipped", reason="another run holds the lock")
                return None
            report = await self.job.run(now=self.clock(), ctx=ctx, dry_run=dry_run)
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
