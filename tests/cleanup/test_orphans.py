"""Orphaned objects, the 15-minute goal, dry runs, storage failures and exclusive runs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from session_service.cleanup.runner import job_context
from session_service.core.locks import LockKey, advisory_lock_for_run
from session_service.core.settings import Settings
from session_service.storage.base import ObjectInfo, ObjectStore, StorageUnavailable
from tests.cleanup.conftest import object_keys, pending_upload, queued, run_cleanup
from tests.conftest import FakeClock
from tests.files.helpers import PDF, post_form, put_directly, upload_file
from tests.helpers import Running, assert_problem, audit_events, create_session, holder
from tests.protection.conftest import running_app


class FailingDeletes:
    """The real store, except that the next `failures` deletions fail."""

    def __init__(self, store: ObjectStore, failures: int = 1) -> None:
        self.store, self.failures = store, failures

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def delete_many(self, keys: Sequence[str]) -> None:
        self._maybe_fail()
        await self.store.delete_many(keys)

    async def purge_prefix(self, prefix: str) -> int:
        self._maybe_fail()
        return await self.store.purge_prefix(prefix)

    def _maybe_fail(self) -> None:
        if self.failures:
            self.failures -= 1
            raise StorageUnavailable("storage is down")


def stray_key() -> str:
    """A key in the layout objects had before keys lost their names (`.../{file_id}/{name}`)."""
    return f"uploads/{uuid.uuid4()}/{uuid.uuid4()}/stray.pdf"


def ref(key: str) -> str:
    """How reports and audit events name an object: its ids, never a file name."""
    assert key.endswith("/stray.pdf")
    return key.removesuffix("/stray.pdf")


class TestOrphans:
    async def test_what_changes_leave_goes_at_the_next_run_without_a_listing(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        """Resets and erasures queue their objects; the next run deletes them, lists nothing."""
        assert (await run_cleanup(app, full_sweep=True)).full_sweep.ran  # none due for a day
        # Left by a reset: the old session's file goes with it.
        old = await create_session(client)
        reset_file = await upload_file(client, old)
        reset = await client.post(
            "/api/v1/session/reset",
            json={"reason": "tampered"},
            headers=holder(old),
        )
        assert reset.status_code == 201
        # Left by an erasure while storage was down.
        erased = await create_session(client)
        erased_file = await upload_file(client, erased)
        queue = app.resources.deletions
        real_store = queue.store
        queue.store = FailingDeletes(real_store)
        response = await client.delete("/api/v1/session", headers=holder(erased))
        assert response.status_code == 202
        queue.store = real_store
        # Left by an abandoned upload (posted, never completed).
        keeper = await create_session(client)
        abandoned = await pending_upload(client, keeper)
        assert (await post_form(client, abandoned["upload"], PDF)).status_code in (200, 201, 204)
        kept = await upload_file(client, keeper)

        clock.advance(timedelta(minutes=1))  # younger than ORPHAN_MIN_AGE: no matter
        first = await run_cleanup(app)
        assert not first.full_sweep.ran
        keys = await object_keys(app)
        for gone in (reset_file["id"], erased_file["id"]):
            assert not any(gone in key for key in keys), gone
        assert any(abandoned["file"]["id"] in key for key in keys)  # within UPLOAD_GRACE

        clock.advance(timedelta(minutes=30))
        later = await run_cleanup(app)
        assert not later.full_sweep.ran
        quarantined = f"incoming/{keeper['id']}/{abandoned['file']['id']}"
        assert later.stale_quarantine.items == [quarantined]
        keys = await object_keys(app)
        assert not any(abandoned["file"]["id"] in key for key in keys)
        assert any(kept["id"] in key for key in keys)
        assert await queued(app) == []

    async def test_objects_of_no_session_go_in_batches_and_are_audited(
        self, app: Running, clock: FakeClock, settings: Settings
    ) -> None:
        strays = [stray_key() for _ in range(5)]
        for key in strays:
            await put_directly(app, key, PDF, "application/pdf")
        app.resources.cleanup.job.batch = 2  # three batches
        clock.advance(timedelta(minutes=11))
        report = await run_cleanup(app, full_sweep=True)
        assert sorted(report.orphaned_objects.items) == sorted(map(ref, strays))
        assert await object_keys(app) == set()
        events = [e for e in await audit_events(app) if e["type"] == "storage.orphan_deleted"]
        assert sorted(e["details"]["key"] for e in events) == sorted(map(ref, strays))

    async def test_a_live_sessions_object_is_never_deleted(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        session = await create_session(client)
        completed = await upload_file(client, session)
        pending = await pending_upload(client, session)
        await post_form(client, pending["upload"], PDF)
        clock.advance(timedelta(minutes=20))  # old objects, pending still within its grace
        report = await run_cleanup(app, full_sweep=True)
        assert report.orphaned_objects.count == 0
        keys = await object_keys(app)
        assert any(completed["id"] in key for key in keys)
        assert any(pending["file"]["id"] in key for key in keys)

    async def test_an_object_claimed_between_listing_and_deletion_is_kept(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        """The liveness check runs after the listing, so a claim made meanwhile counts."""
        session = await create_session(client)
        uploaded = await upload_file(client, session)
        [key] = await object_keys(app)
        # Detach the object from its row: an orphan, as far as the database knows.
        async with app.resources.engine.begin() as conn:
            await conn.execute(
                text("UPDATE files SET storage_key = 'elsewhere' WHERE storage_key = :k"),
                {"k": key},
            )
        store = app.resources.store

        class ClaimingWhileListing:
            def __getattr__(self, name: str) -> Any:
                return getattr(store, name)

            async def list_prefix(self, prefix: str) -> AsyncIterator[ObjectInfo]:
                async for info in store.list_prefix(prefix):
                    # Listed; now the row claims it again before cleanup decides.
                    async with app.resources.engine.begin() as conn:
                        await conn.execute(
                            text(
                                "UPDATE files SET storage_key = :k WHERE storage_key = 'elsewhere'"
                            ),
                            {"k": key},
                        )
                    yield info

        app.resources.cleanup.job.store = ClaimingWhileListing()
        clock.advance(timedelta(minutes=11))
        report = await run_cleanup(app, full_sweep=True)
        assert report.orphaned_objects.count == 0
        assert key in await object_keys(app)
        assert uploaded["id"] in key


class TestDryRun:
    async def test_reports_exactly_what_the_real_run_then_deletes(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        expired = await create_session(client)
        await upload_file(client, expired)
        keeper = await create_session(client)
        await pending_upload(client, keeper)
        stray = stray_key()
        await put_directly(app, stray, PDF, "application/pdf")
        clock.advance(timedelta(hours=23, minutes=59))
        await client.post("/api/v1/session/validate", headers=holder(keeper))
        clock.advance(timedelta(minutes=2))
        before = (await object_keys(app), len(await audit_events(app)))

        dry = await run_cleanup(app, dry_run=True, full_sweep=True)
        assert (await object_keys(app), len(await audit_events(app)) - 1) == before
        real = await run_cleanup(app, full_sweep=True)

        for kind in (
            "expired_sessions",
            "abandoned_uploads",
            "orphaned_objects",
            "session_objects",
            "stale_quarantine",
            "queued_deletions",
        ):
            assert sorted(getattr(dry, kind).items) == sorted(getattr(real, kind).items), kind
        assert dry.counts() == real.counts()
        assert dry.expired_sessions.items == [expired["id"]]
        assert dry.orphaned_objects.items == [ref(stray)]
        assert dry.abandoned_uploads.count == 1


class TestStorageErrors:
    async def test_the_run_goes_on_reports_and_a_later_run_finishes(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        session = await create_session(client)
        uploaded = await upload_file(client, session)
        stray = stray_key()
        await put_directly(app, stray, PDF, "application/pdf")
        service = app.resources.cleanup.job
        service.store = FailingDeletes(app.resources.store, failures=1)
        clock.advance(timedelta(days=1, seconds=1))

        first = await run_cleanup(app, full_sweep=True)
        assert first.expired_sessions.items == [session["id"]]  # rows went regardless
        assert first.errors == [{"step": "expired_sessions", "error": "StorageUnavailable"}]
        failed = [e for e in await audit_events(app) if e["type"] == "cleanup.failed"]
        assert [e["details"] for e in failed] == first.errors
        summary = [e for e in await audit_events(app) if e["type"] == "cleanup.completed"][-1]
        assert summary["outcome"] == "failure"
        # The same run's orphan sweep already took the object the failed call left.
        keys = await object_keys(app)
        assert not any(uploaded["id"] in key for key in keys)
        assert stray not in keys

    async def test_storage_down_for_the_whole_run_is_finished_by_the_next(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        session = await create_session(client)
        uploaded = await upload_file(client, session)
        service = app.resources.cleanup.job
        service.store = FailingDeletes(app.resources.store, failures=10)
        clock.advance(timedelta(days=1, seconds=1))
        first = await run_cleanup(app, full_sweep=True)
        assert {error["step"] for error in first.errors} == {
            "expired_sessions",
            "queued_deletions",
            "orphaned_objects",
        }
        assert any(uploaded["id"] in key for key in await object_keys(app))
        service.store.failures = 0
        clock.advance(timedelta(minutes=11))
        second = await run_cleanup(app)
        assert second.errors == []
        assert not any(uploaded["id"] in key for key in await object_keys(app))


@pytest.mark.postgres_only
class TestOneRunAtATime:
    async def test_two_instances_one_runs_the_other_skips(
        self,
        client: httpx.AsyncClient,
        app: Running,
        clock: FakeClock,
        settings: Settings,
        database_url: str,
    ) -> None:
        if not database_url.startswith("postgresql"):
            pytest.skip("the cross-instance lock is PostgreSQL's")
        strays = [stray_key() for _ in range(6)]
        for key in strays:
            await put_directly(app, key, PDF, "application/pdf")
        clock.advance(timedelta(minutes=11))
        async with running_app(settings, clock) as other:
            app.resources.cleanup.job.batch = other.resources.cleanup.job.batch = 1
            reports = await asyncio.gather(
                app.resources.cleanup.run_once(dry_run=False, full_sweep=True, ctx=job_context()),
                other.resources.cleanup.run_once(dry_run=False, full_sweep=True, ctx=job_context()),
            )
        ran = [report for report in reports if report is not None]
        assert len(ran) == 1
        assert sorted(ran[0].orphaned_objects.items) == sorted(map(ref, strays))
        events = [e for e in await audit_events(app) if e["type"] == "storage.orphan_deleted"]
        assert len(events) == len(strays)  # nothing deleted (or audited) twice


class TestAdminEndpoint:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.with_overrides(admin_api_keys=["admin-key"])

    async def test_dry_run_for_an_admin(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        stray = stray_key()
        await put_directly(app, stray, PDF, "application/pdf")
        clock.advance(timedelta(minutes=11))
        admin = {"Authorization": "Bearer admin-key"}
        response = await client.post(
            "/api/v1/admin/cleanup?dry_run=true&wait=true&full_sweep=true", headers=admin
        )
        assert response.status_code == 200
        body = response.json()
        assert body["dry_run"] is True
        assert body["orphaned_objects"] == {"count": 1, "items": [ref(stray)], "truncated": False}
        assert stray in await object_keys(app)
        real = await client.post("/api/v1/admin/cleanup?wait=true&full_sweep=true", headers=admin)
        assert real.json()["orphaned_objects"]["count"] == 1
        assert stray not in await object_keys(app)

    async def test_needs_the_admin_key(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.post("/api/v1/admin/cleanup"), 401, "unauthorized")

    async def test_a_run_in_progress_is_409(self, client: httpx.AsyncClient, app: Running) -> None:
        async with advisory_lock_for_run(app.resources.engine, LockKey.CLEANUP) as acquired:
            assert acquired
            response = await client.post(
                "/api/v1/admin/cleanup", headers={"Authorization": "Bearer admin-key"}
            )
        assert_problem(response, 409, "cleanup_running")
