"""Running cleanup: one run at a time across instances, periodically and on demand.

Exclusion is `advisory_lock_for_run` (a run spans many transactions), so a second
instance, a CLI call or an admin call during a run skips instead of racing it. Runs
happen in a background task, never on the request path: an admin's run is started
(`start`) and answered at once, and its progress is read from this instance (`get`).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from session_service.cleanup.job import CleanupJob
from session_service.cleanup.report import CleanupReport
from session_service.core.clock import Clock
from session_service.core.context import RequestContext
from session_service.core.locks import LockKey, advisory_lock_for_run
from session_service.core.tasks import stop_task
from session_service.notify.alert import Alert
from session_service.notify.notifier import AlertNotifier

log = structlog.get_logger(__name__)


def job_context() -> RequestContext:
    """Who a scheduled or command-line run is, in its audit events."""
    return RequestContext(
        request_id=f"cleanup-{uuid.uuid4().hex[:16]}", client_ip=None, user_agent="cleanup"
    )


# Admin-started runs this process remembers for their status endpoint, newest last.
KEPT_RUNS = 20

RunStatus = Literal["running", "finished", "failed"]


@dataclass
class CleanupRun:
    """A run an admin started: its report fills in as its steps finish."""

    id: str
    report: CleanupReport
    status: RunStatus = "running"
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.id, "status": self.status, "report": self.report.as_dict()}


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
        self.runs: OrderedDict[str, CleanupRun] = OrderedDict()

    async def run_once(
        self, *, dry_run: bool, ctx: RequestContext, full_sweep: bool = False
    ) -> CleanupReport | None:
        """One run now; None when another run (here or in another instance) holds the lock.

        `full_sweep`: list all of storage for orphans in this run, due or not.
        """
        async with advisory_lock_for_run(self.engine, LockKey.CLEANUP) as acquired:
            if not acquired:
                log.info("cleanup_skipped", reason="another run holds the lock")
                return None
            report = await self.job.run(
                now=self.clock(), ctx=ctx, dry_run=dry_run, full_sweep=full_sweep
            )
        self._finished(report)
        return report

    async def start(
        self, *, dry_run: bool, ctx: RequestContext, full_sweep: bool = False
    ) -> CleanupRun | None:
        """Start a run in the background once it holds the lock; None if another run does.

        Returns as soon as the lock is decided, so the caller answers at once.
        """
        locked: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        now = self.clock()
        run = CleanupRun(id=uuid.uuid4().hex, report=CleanupReport(dry_run=dry_run, started_at=now))

        async def body() -> None:
            try:
                async with advisory_lock_for_run(self.engine, LockKey.CLEANUP) as acquired:
                    locked.set_result(acquired)
                    if not acquired:
                        return
                    await self.job.run(
                        now=now, ctx=ctx, dry_run=dry_run, full_sweep=full_sweep, report=run.report
                    )
                run.status = "finished"
                self._finished(run.report)
            except Exception as exc:
                run.status = "failed"
                if not locked.done():
                    locked.set_exception(exc)
                else:
                    log.exception("cleanup_run_failed", run_id=run.id)

        run.task = asyncio.create_task(body())
        if not await locked:
            log.info("cleanup_skipped", reason="another run holds the lock")
            return None
        self.runs[run.id] = run
        while len(self.runs) > KEPT_RUNS:
            self.runs.popitem(last=False)
        return run

    def get(self, run_id: str) -> CleanupRun | None:
        """A run this process started for an admin, running or recently ended."""
        return self.runs.get(run_id)

    async def finish_started(self, grace: float) -> None:
        """At shutdown: let admin-started runs finish for `grace` seconds, then stop them."""
        tasks = [run.task for run in self.runs.values() if run.task and not run.task.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        for task in tasks:
            await stop_task(task)

    def _finished(self, report: CleanupReport) -> None:
        log.info(
            "cleanup_finished",
            dry_run=report.dry_run,
            seconds=report.seconds,
            errors=len(report.errors),
            **report.counts(),
        )
        if not report.dry_run:
            self._alert(report)

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
