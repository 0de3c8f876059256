"""`session-service cleanup`, the scheduled runs, and alerts from runs."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from session_service.app import create_app
from session_service.cleanup.report import CleanupReport
from session_service.core.settings import Settings
from tests.conftest import FakeClock, empty_tables
from tests.helpers import Running, audit_events, running
from tests.notify.conftest import WebhookReceiver


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "LOCAL_STORAGE_DIR": str(tmp_path / "storage"),
        "SIGNING_KEY_FILE": str(tmp_path / "signing.key"),
    }
    return subprocess.run(
        [sys.executable, "-m", "session_service", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class TestCommandLine:
    def test_dry_run_prints_a_json_report(self, tmp_path: Path) -> None:
        assert _cli(tmp_path, "migrate", "upgrade").returncode == 0
        stray = tmp_path / "storage" / "objects" / "uploads" / "x" / "y.pdf"
        result = _cli(tmp_path, "cleanup", "--dry-run")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["dry_run"] is True
        assert report["errors"] == []
        assert set(report) >= {"expired_sessions", "orphaned_objects", "seconds", "deletions"}
        assert not stray.exists()

    def test_real_run_and_help(self, tmp_path: Path) -> None:
        assert _cli(tmp_path, "migrate", "upgrade").returncode == 0
        result = _cli(tmp_path, "cleanup")
        assert result.returncode == 0, result.stderr
        first = json.loads(result.stdout)
        assert first["dry_run"] is False
        assert first["full_sweep"]["ran"] is True  # the first run ever: none before it
        again = json.loads(_cli(tmp_path, "cleanup").stdout)
        assert again["full_sweep"]["ran"] is False  # remembered: due a day later
        assert again["full_sweep"]["previous_at"] == first["started_at"]
        forced = json.loads(_cli(tmp_path, "cleanup", "--full-sweep").stdout)
        assert forced["full_sweep"] == {**forced["full_sweep"], "ran": True, "forced": True}
        helped = _cli(tmp_path, "cleanup", "--help")
        assert "--dry-run" in helped.stdout
        assert "--full-sweep" in helped.stdout


class TestSchedule:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.with_overrides(
            cleanup_enabled=True, cleanup_interval=timedelta(milliseconds=50)
        )

    async def test_runs_by_itself_in_the_background(self, app: Running) -> None:
        deadline = time.monotonic() + 10
        while not [e for e in await audit_events(app) if e["type"] == "cleanup.completed"]:
            assert time.monotonic() < deadline, "no scheduled run"
            await asyncio.sleep(0.05)

    async def test_disabled_per_instance(self, settings: Settings, clock: FakeClock) -> None:
        quiet = create_app(settings.with_overrides(cleanup_enabled=False), clock=clock)
        async with running(quiet) as started:
            runs = [e for e in await audit_events(started) if e["type"] == "cleanup.completed"]
            await asyncio.sleep(0.3)  # six intervals of the enabled schedule
            after = [e for e in await audit_events(started) if e["type"] == "cleanup.completed"]
        assert after == runs


class TestAlerts:
    @pytest.fixture
    def settings(self, settings: Settings, webhook_server: WebhookReceiver) -> Settings:
        return settings.with_overrides(
            alert_webhook_url=webhook_server.url, cleanup_alert_threshold=2
        )

    async def test_errors_and_large_runs_alert_the_admin(
        self, app: Running, clock: FakeClock, webhook_server: WebhookReceiver
    ) -> None:
        from tests.cleanup.conftest import run_cleanup
        from tests.cleanup.test_orphans import FailingDeletes, stray_key
        from tests.files.helpers import PDF, put_directly

        for _ in range(3):
            await put_directly(app, stray_key(), PDF, "application/pdf")
        clock.advance(timedelta(minutes=11))
        service = app.resources.cleanup.job
        service.store = FailingDeletes(app.resources.store, failures=1)
        service.batch = 1
        report = await run_cleanup(app, full_sweep=True)
        assert report.errors
        assert report.orphaned_objects.count == 2
        await app.resources.notifier.drain()
        summaries = sorted(json.loads(r.body)["summary"] for r in webhook_server.requests)
        assert len(summaries) == 1  # two deletions: not above the threshold of 2
        assert summaries[0].startswith("Cleanup run had 1 error(s): orphaned_objects:")
        payload = json.loads(webhook_server.requests[0].body)
        assert payload["source"] == "cleanup"


class TestLargeRunAlert:
    @pytest.fixture
    def settings(self, settings: Settings, webhook_server: WebhookReceiver) -> Settings:
        return settings.with_overrides(
            alert_webhook_url=webhook_server.url, cleanup_alert_threshold=1
        )

    async def test_a_run_above_the_threshold_alerts(
        self, app: Running, clock: FakeClock, webhook_server: WebhookReceiver
    ) -> None:
        from tests.cleanup.conftest import run_cleanup
        from tests.cleanup.test_orphans import stray_key
        from tests.files.helpers import PDF, put_directly

        for _ in range(2):
            await put_directly(app, stray_key(), PDF, "application/pdf")
        clock.advance(timedelta(minutes=11))
        dry = await run_cleanup(app, dry_run=True, full_sweep=True)
        assert dry.deletions == 2
        await app.resources.notifier.drain()
        assert webhook_server.requests == []  # a dry run never alerts
        report = await run_cleanup(app, full_sweep=True)
        assert report.errors == []
        await app.resources.notifier.drain()
        [alert] = [json.loads(r.body) for r in webhook_server.requests]
        assert alert["summary"] == "Cleanup deleted 2 items (threshold 1)"
        assert alert["details"]["counts"]["orphaned_objects"] == 2


class TestShutdown:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.with_overrides(
            cleanup_enabled=True, cleanup_interval=timedelta(milliseconds=20)
        )

    async def test_a_run_in_progress_is_finished_not_abandoned(
        self, settings: Settings, clock: FakeClock
    ) -> None:
        application = create_app(settings, clock=clock)
        started = asyncio.Event()
        async with running(application) as run:
            job = run.resources.cleanup.job
            run_job = job.run

            async def slow_run(**kwargs: Any) -> CleanupReport:
                started.set()
                await asyncio.sleep(0.5)  # a run that is still going at shutdown
                return await run_job(**kwargs)

            job.run = slow_run  # type: ignore[method-assign]
            await asyncio.wait_for(started.wait(), 10)
            before = len([e for e in await audit_events(run) if e["type"] == "cleanup.completed"])
        # The lifespan has exited: the run that had started wrote its summary first.
        after = [e for e in await audit_events(run) if e["type"] == "cleanup.completed"]
        await empty_tables(run.resources.engine)  # its runs' marks must not reach other tests
        assert len(after) == before + 1
