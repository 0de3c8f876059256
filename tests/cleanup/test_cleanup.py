"""One cleanup run: what goes, what stays, and how each deletion is accounted for."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx

from tests.cleanup.conftest import object_keys, pending_upload, run_cleanup
from tests.conftest import FakeClock
from tests.files.helpers import PDF, file_rows, post_form, upload_file
from tests.helpers import SESSIONS, Running, audit_events, create_session, holder, session_row


async def file_ids(app: Running) -> set[str]:
    return {str(uuid.UUID(str(row["id"]))) for row in await file_rows(app)}


class TestExpiredSessions:
    async def test_idle_active_session_goes_with_its_files(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        idle = await create_session(client)
        idle_file = await upload_file(client, idle)
        clock.advance(timedelta(hours=23))
        live = await create_session(client)
        live_file = await upload_file(client, live)
        clock.advance(timedelta(hours=1, seconds=1))

        report = await run_cleanup(app)

        assert report.expired_sessions.items == [idle["id"]]
        assert await session_row(app, idle["id"]) is None
        assert await session_row(app, live["id"]) is not None
        assert await file_ids(app) == {live_file["id"]}
        keys = await object_keys(app)
        assert len(keys) == 1
        assert live_file["id"] in next(iter(keys))
        assert idle_file["id"] not in str(keys)
        expired = [e for e in await audit_events(app) if e["type"] == "session.expired"]
        assert [(e["session_id"], e["details"]) for e in expired] == [
            (idle["id"], {"status": "active", "files": 1})
        ]

    async def test_pending_verification_lasts_its_longer_ttl(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        session = await create_session(client)
        details = {"name": "Ada", "email": "ada@example.org", "consent_user_data": True}
        response = await client.put(
            "/api/v1/session/details", json=details, headers=holder(session)
        )
        assert response.status_code == 200
        clock.advance(timedelta(days=2))
        assert (await run_cleanup(app)).expired_sessions.count == 0
        clock.advance(timedelta(days=5, seconds=1))
        assert (await run_cleanup(app)).expired_sessions.items == [session["id"]]
        assert await session_row(app, session["id"]) is None

    async def test_superseded_sessions_go_after_the_idle_ttl(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        old = await create_session(client)
        reset = await client.post(
            "/api/v1/session/reset",
            json={"reason": "tampered"},
            headers=holder(old),
        )
        assert reset.status_code == 201
        new = reset.json()["session"]
        clock.advance(timedelta(hours=12))
        validate = await client.post("/api/v1/session/validate", headers=holder(new))
        assert validate.json()["valid"] is True
        clock.advance(timedelta(hours=12, seconds=1))
        report = await run_cleanup(app)
        assert report.expired_sessions.items == [old["id"]]  # the new one was seen 12 h ago
        assert await session_row(app, new["id"]) is not None

    async def test_completed_sessions_end_at_the_absolute_lifetime(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        """A completed row from before the cap (expires_at NULL) still ends at SESSION_MAX_AGE."""
        session = await create_session(client)
        async with app.resources.engine.begin() as conn:
            await conn.execute(
                SESSIONS.update()
                .where(SESSIONS.c.id == uuid.UUID(session["id"]))
                .values(status="completed", expires_at=None)
            )
        clock.advance(timedelta(days=29))
        assert (await run_cleanup(app)).expired_sessions.count == 0
        clock.advance(timedelta(days=1))
        report = await run_cleanup(app)
        assert report.expired_sessions.items == [session["id"]]


class TestAbandonedUploads:
    async def test_pending_past_the_grace_goes_with_its_object(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        session = await create_session(client)
        posted = await pending_upload(client, session)  # uploaded, never completed
        assert (await post_form(client, posted["upload"], PDF)).status_code in (200, 201, 204)
        never_posted = await pending_upload(client, session)
        completed = await upload_file(client, session)
        clock.advance(timedelta(minutes=29))
        fresh = await pending_upload(client, session)
        clock.advance(timedelta(minutes=1, seconds=1))

        report = await run_cleanup(app)

        gone = {posted["file"]["id"], never_posted["file"]["id"]}
        assert set(report.abandoned_uploads.items) == gone
        assert await file_ids(app) == {completed["id"], fresh["file"]["id"]}
        assert not any(posted["file"]["id"] in key for key in await object_keys(app))
        events = [e for e in await audit_events(app) if e["type"] == "file.abandoned"]
        assert {e["details"]["file_id"] for e in events} == gone
        assert {e["session_id"] for e in events} == {session["id"]}


class TestSummary:
    async def test_each_run_writes_a_summary_event_and_counts_metrics(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        session = await create_session(client)
        await upload_file(client, session)
        clock.advance(timedelta(days=1, seconds=1))
        report = await run_cleanup(app)
        [summary] = [e for e in await audit_events(app) if e["type"] == "cleanup.completed"]
        assert summary["outcome"] == "success"
        assert summary["details"]["counts"] == report.counts()
        assert summary["details"]["dry_run"] is False
        assert summary["request_id"].startswith("cleanup-")
        metrics = (await client.get("/metrics")).text
        assert 'session_service_cleanup_deletions_total{kind="sessions"} 1.0' in metrics
