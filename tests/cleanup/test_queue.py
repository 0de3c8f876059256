"""The deletion queue: written in the transaction of each change that lets go of objects,
worked through by cleanup, and a full listing of storage only at its interval or on demand."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
import pytest

from session_service.cleanup.runner import job_context
from session_service.core.db import job_scope
from session_service.core.settings import Settings
from session_service.deletions.repository import DeletionRepository
from session_service.deletions.targets import Deletion
from session_service.files.names import incoming_key
from session_service.storage.base import ObjectStore
from session_service.storage.s3 import S3Store
from tests.cleanup.conftest import object_keys, queued, run_cleanup
from tests.cleanup.test_orphans import FailingDeletes, stray_key
from tests.conftest import FakeClock
from tests.faults import failing_commit
from tests.files.helpers import PDF, file_rows, put_directly, upload_file
from tests.helpers import Running, create_session, holder, session_row
from tests.protection.conftest import running_app


class CountingStore:
    """The real store, counting every call made through it, by method."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.store, name)
        if not callable(attribute):
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return attribute(*args, **kwargs)

        return counted


def count_requests(store: ObjectStore) -> Counter[str]:
    """On S3, every HTTP request the store's client sends, by operation (moto answers them)."""
    sent: Counter[str] = Counter()
    if isinstance(store, S3Store):

        def before_send(event_name: str, **_: Any) -> None:
            sent[event_name.rsplit(".", 1)[-1]] += 1

        store._client.meta.events.register("before-send.s3", before_send)
    return sent


def wrap_storage(app: Running) -> tuple[CountingStore, Counter[str]]:
    """Count what a cleanup run asks of storage: through the store and on the wire."""
    job = app.resources.cleanup.job
    counting = CountingStore(job.store)
    job.store = job.journal.store = counting
    return counting, count_requests(app.resources.store)


async def erase(client: httpx.AsyncClient, session: dict[str, Any]) -> httpx.Response:
    return await client.delete("/api/v1/session", headers=holder(session))


def past_the_forms(app: Running) -> timedelta:
    """Long enough for every form issued until now to have expired."""
    return app.resources.settings.storage.upload_url_ttl + timedelta(seconds=1)


class TestWrittenWithTheChange:
    """A change and its queued deletions commit together, or neither does."""

    async def test_a_file_deletion(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        session = await create_session(client)
        uploaded = await upload_file(client, session)
        [row] = await file_rows(app)
        key = row["storage_key"]
        before = await queued(app)  # the completion's: its quarantine, once its form expired
        assert before == [incoming_key(key)]
        path = f"/api/v1/session/files/{uploaded['id']}"

        async with failing_commit(app, "deletion_queue"):
            failed = await client.delete(path, headers=holder(session))
        assert failed.status_code >= 500
        assert [r["id"] for r in await file_rows(app)] == [row["id"]]  # rolled back together
        assert await queued(app) == before
        assert key in await object_keys(app)

        queue = app.resources.deletions
        queue.store = FailingDeletes(queue.store)
        assert (await client.delete(path, headers=holder(session))).status_code == 204
        assert await file_rows(app) == []
        assert await queued(app) == [*before, key, incoming_key(key)]
        assert key in await object_keys(app)

        clock.advance(past_the_forms(app))
        report = await run_cleanup(app)
        assert report.queued_deletions.count == 2  # two keys, each deleted once
        assert await object_keys(app) == set()
        assert await queued(app) == []

    async def test_an_erasure(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        session = await create_session(client)
        await upload_file(client, session)
        prefixes = [f"uploads/{session['id']}/", f"incoming/{session['id']}/"]

        async with failing_commit(app, "deletion_queue"):
            assert (await erase(client, session)).status_code >= 500
        assert await session_row(app, session["id"]) is not None
        assert not set(prefixes) & set(await queued(app))

        queue = app.resources.deletions
        real_store = queue.store
        queue.store = FailingDeletes(real_store)
        assert (await erase(client, session)).status_code == 202
        assert await session_row(app, session["id"]) is None
        assert set(prefixes) <= set(await queued(app))
        assert len(await object_keys(app)) == 1  # left for cleanup

        report = await run_cleanup(app)
        assert report.queued_deletions.items == [prefixes[0]]
        assert await object_keys(app) == set()
        # The quarantine prefix stays queued until the session's last form has expired.
        assert f"incoming/{session['id']}/" in await queued(app)
        clock.advance(past_the_forms(app))
        await run_cleanup(app)
        assert await queued(app) == []

    async def test_an_erasure_that_reached_storage_keeps_only_what_a_form_may_still_write(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        session = await create_session(client)
        await upload_file(client, session)
        assert (await erase(client, session)).status_code == 204
        assert await object_keys(app) == set()
        left = await queued(app)
        assert f"uploads/{session['id']}/" not in left  # deleted: its row went
        assert f"incoming/{session['id']}/" in left

    async def test_a_reset(self, client: httpx.AsyncClient, app: Running) -> None:
        old = await create_session(client)
        await upload_file(client, old)
        [row] = await file_rows(app)
        before = await queued(app)

        async with failing_commit(app, "deletion_queue"):
            failed = await client.post(
                "/api/v1/session/reset", json={"reason": "tampered"}, headers=holder(old)
            )
        assert failed.status_code >= 500
        assert (await session_row(app, old["id"]) or {})["status"] == "active"
        assert await queued(app) == before

        reset = await client.post(
            "/api/v1/session/reset", json={"reason": "tampered"}, headers=holder(old)
        )
        assert reset.status_code == 201
        assert await queued(app) == [*before, row["storage_key"]]
        report = await run_cleanup(app)
        assert report.queued_deletions.items == [row["storage_key"].rsplit("/", 1)[0]]
        assert await object_keys(app) == set()
        assert len(await file_rows(app)) == 1  # the rows stay until the session expires

    async def test_an_expiry(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        session = await create_session(client)
        await upload_file(client, session)
        clock.advance(timedelta(days=1, seconds=1))

        async with failing_commit(app, "deletion_queue"):
            failed = await run_cleanup(app)
        assert [error["step"] for error in failed.errors] == ["expired_sessions"]
        assert failed.expired_sessions.count == 0
        assert await session_row(app, session["id"]) is not None
        assert len(await object_keys(app)) == 1

        app.resources.cleanup.job.store = FailingDeletes(app.resources.store, failures=2)
        stopped = await run_cleanup(app)  # rows go; storage fails for the batch and the queue
        assert stopped.expired_sessions.items == [session["id"]]
        assert [e["step"] for e in stopped.errors] == ["expired_sessions", "queued_deletions"]
        [key] = await object_keys(app)
        assert key in await queued(app)
        finished = await run_cleanup(app)
        assert finished.errors == []
        assert finished.queued_deletions.items == [key.rsplit("/", 1)[0]]
        assert await object_keys(app) == set()
        assert await queued(app) == []


class TestWorkedThrough:
    async def test_in_batches_idempotent_and_kept_while_storage_fails(
        self, app: Running, clock: FakeClock
    ) -> None:
        keys = [stray_key() for _ in range(5)]
        for key in keys[:3]:  # the other two are absent already: deleting them is fine
            await put_directly(app, key, PDF, "application/pdf")
        await enqueue(app, [keys[0], *keys], clock)  # queued twice: deleted once
        job = app.resources.cleanup.job
        job.batch = 2
        job.store = FailingDeletes(app.resources.store, failures=1)

        failed = await run_cleanup(app)
        assert failed.errors == [{"step": "queued_deletions", "error": "StorageUnavailable"}]
        assert len(await queued(app)) == 6  # the failed batch stopped the step
        dry = await run_cleanup(app, dry_run=True)
        assert dry.queued_deletions.count == 5
        assert len(await queued(app)) == 6

        report = await run_cleanup(app)
        assert report.errors == []
        assert report.queued_deletions.count == 5
        assert sorted(report.queued_deletions.items) == sorted(k.rsplit("/", 1)[0] for k in keys)
        assert await queued(app) == []
        assert await object_keys(app) == set()
        assert (await run_cleanup(app)).queued_deletions.count == 0

    async def test_what_a_live_session_refers_to_is_never_deleted(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        session = await create_session(client)
        await upload_file(client, session)
        [row] = await file_rows(app)
        clock.advance(past_the_forms(app))
        await run_cleanup(app)  # the completion's quarantine row
        await enqueue(app, [row["storage_key"], f"uploads/{session['id']}/"], clock)

        report = await run_cleanup(app)
        assert report.queued_deletions.count == 0
        assert await queued(app) == []  # claimed: whatever lets go of it later queues it
        assert row["storage_key"] in await object_keys(app)


class TestNoListingWhenNothingIsDue:
    async def test_a_run_with_nothing_to_do_makes_no_storage_call(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        for _ in range(3):
            session = await create_session(client)
            await upload_file(client, session)
            await upload_file(client, session)
        clock.advance(past_the_forms(app))
        await run_cleanup(app, full_sweep=True)  # completions' rows; the marks
        assert len(await object_keys(app)) == 6

        counting, requests = wrap_storage(app)
        clock.advance(timedelta(hours=1))
        report = await run_cleanup(app)
        assert report.deletions == 0
        assert not report.full_sweep.ran
        assert counting.calls == Counter()
        assert requests == Counter()  # on S3: not one request reached moto

        # The counters do count: a forced sweep lists both prefixes.
        swept = await run_cleanup(app, full_sweep=True)
        assert swept.full_sweep.ran
        assert counting.calls["list_prefix"] == 2
        assert isinstance(app.resources.store, S3Store) == bool(requests["ListObjectsV2"])


class TestFullSweep:
    async def test_at_its_interval_across_instances(
        self, app: Running, clock: FakeClock, settings: Settings
    ) -> None:
        first = await run_cleanup(app, full_sweep=True)
        swept_at = first.started_at
        assert first.full_sweep.ran
        assert first.full_sweep.forced
        stray = stray_key()
        await put_directly(app, stray, PDF, "application/pdf")

        clock.advance(timedelta(hours=23))  # another instance, as after a restart
        async with running_app(settings, clock) as other:
            counting, _ = wrap_storage(other)
            report = await other.resources.cleanup.run_once(dry_run=False, ctx=job_context())
            assert report is not None
            assert counting.calls["list_prefix"] == 0
        assert not report.full_sweep.ran
        assert report.full_sweep.previous_at == swept_at
        assert report.full_sweep.next_due_at == swept_at + timedelta(days=1)
        assert stray in await object_keys(app)

        clock.advance(timedelta(hours=1))
        due = await run_cleanup(app)
        assert due.full_sweep.ran
        assert not due.full_sweep.forced
        assert due.orphaned_objects.count == 1
        assert stray not in await object_keys(app)
        assert due.full_sweep.next_due_at == due.started_at + timedelta(days=1)

    @pytest.mark.parametrize("settings_overrides", [{"orphan_full_sweep_interval": 0}])
    async def test_an_interval_of_zero_sweeps_only_when_asked(
        self, app: Running, clock: FakeClock
    ) -> None:
        stray = stray_key()
        await put_directly(app, stray, PDF, "application/pdf")
        clock.advance(timedelta(days=30))
        report = await run_cleanup(app)
        assert not report.full_sweep.ran
        assert report.full_sweep.next_due_at is None
        assert stray in await object_keys(app)
        forced = await run_cleanup(app, full_sweep=True)
        assert forced.full_sweep.ran
        assert forced.full_sweep.next_due_at is None
        assert stray not in await object_keys(app)

    async def test_a_dry_sweep_leaves_the_schedule_alone(
        self, app: Running, clock: FakeClock
    ) -> None:
        first = await run_cleanup(app, full_sweep=True)
        clock.advance(timedelta(days=2))
        dry = await run_cleanup(app, dry_run=True)
        assert dry.full_sweep.ran
        real = await run_cleanup(app)
        assert real.full_sweep.ran
        assert real.full_sweep.previous_at == first.started_at


async def enqueue(app: Running, targets: list[str], clock: FakeClock) -> None:
    """Queue these targets as a change would, due now."""
    async with job_scope(app.resources.sessionmaker) as db:
        deletions = [Deletion(target, clock.now) for target in targets]
        await DeletionRepository(db).add(deletions, now=clock.now)
