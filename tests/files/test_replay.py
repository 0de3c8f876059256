"""Upload forms are single-use in effect: nothing a replayed form writes is ever served.

A form stays valid until it expires, and S3 accepts a valid POST policy any number of
times (moto too), so on S3 a replay is stored, but in quarantine (`incoming/`), where
nothing reads and cleanup empties. The local backend refuses it outright.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from session_service.cleanup.runner import job_context
from session_service.core.clock import utc_now
from session_service.files.names import INCOMING_PREFIX
from tests.conftest import FakeClock
from tests.faults import failing_insert
from tests.files.helpers import PDF, fetch, file_rows, post_form, request_slot
from tests.helpers import Running, assert_problem, audit_events, create_session, holder

# The same size as the checked PDF, so every policy condition holds for the replay too.
SCRIPT = b"<html><script>alert(1)</script>" + b" " * (len(PDF) - 31)


@pytest.fixture
def clock() -> FakeClock:
    """Stored objects carry real times: cleanup's `now` must be comparable with them."""
    return FakeClock(start=utc_now())


def _files(file_id: str) -> str:
    return f"/api/v1/session/files/{file_id}"


async def _uploaded(client: httpx.AsyncClient, session: dict[str, Any]) -> dict[str, Any]:
    """A completed upload: its slot answer (file and form) and a download URL."""
    slot = (await request_slot(client, session)).json()
    assert (await post_form(client, slot["upload"], PDF)).status_code in (200, 201, 204)
    completed = await client.post(f"{_files(slot['file']['id'])}/complete", headers=holder(session))
    assert completed.status_code == 200
    download = await client.get(f"{_files(slot['file']['id'])}/download", headers=holder(session))
    return {**slot, "download_url": download.json()["url"]}


async def _replay(client: httpx.AsyncClient, slot: dict[str, Any], backend: str) -> None:
    """Post the form again with other bytes: the local backend refuses, S3 stores."""
    replayed = await post_form(client, slot["upload"], SCRIPT)
    if backend == "local":
        assert_problem(replayed, 409, "upload_already_used")
    else:
        assert replayed.status_code in (200, 201, 204), replayed.text


async def _quarantined(app: Running) -> list[str]:
    return [info.key async for info in app.resources.store.list_prefix(INCOMING_PREFIX)]


async def _cleanup_after_quarantine(app: Running, clock: FakeClock) -> None:
    settings = app.resources.settings
    clock.advance(settings.storage.upload_url_ttl + settings.cleanup.upload_grace)
    clock.advance(timedelta(minutes=1))
    report = await app.resources.cleanup.run_once(dry_run=False, ctx=job_context())
    assert report is not None
    assert report.errors == []


class TestReplay:
    async def test_after_completion_the_checked_file_is_served(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock, store_backend: str
    ) -> None:
        session = await create_session(client)
        slot = await _uploaded(client, session)
        await _replay(client, slot, store_backend)

        assert (await fetch(client, slot["download_url"])).content == PDF
        listed = await client.get("/api/v1/session/files", headers=holder(session))
        assert [f["status"] for f in listed.json()["files"]] == ["uploaded"]
        again = await client.get(f"{_files(slot['file']['id'])}/download", headers=holder(session))
        assert (await fetch(client, again.json()["url"])).content == PDF
        expected = [slot["upload"]["fields"]["key"]] if store_backend == "s3" else []
        assert await _quarantined(app) == expected

        await _cleanup_after_quarantine(app, clock)
        assert await _quarantined(app) == []
        later = await client.get(f"{_files(slot['file']['id'])}/download", headers=holder(session))
        assert (await fetch(client, later.json()["url"])).content == PDF

    async def test_after_deletion_nothing_is_served(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock, store_backend: str
    ) -> None:
        session = await create_session(client)
        slot = await _uploaded(client, session)
        deleted = await client.delete(_files(slot["file"]["id"]), headers=holder(session))
        assert deleted.status_code == 204
        await _replay(client, slot, store_backend)

        assert (await fetch(client, slot["download_url"])).status_code in (403, 404)
        await _cleanup_after_quarantine(app, clock)
        assert await _quarantined(app) == []

    async def test_after_erasure_nothing_comes_back(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock, store_backend: str
    ) -> None:
        session = await create_session(client)
        slot = await _uploaded(client, session)
        assert (await client.delete("/api/v1/session", headers=holder(session))).status_code == 204
        await _replay(client, slot, store_backend)

        assert (await fetch(client, slot["download_url"])).status_code in (403, 404)
        store = app.resources.store
        assert [info.key async for info in store.list_prefix("uploads/")] == []
        await _cleanup_after_quarantine(app, clock)
        assert await _quarantined(app) == []

    async def test_completion_moves_the_upload_out_of_quarantine_on_the_record(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        session = await create_session(client)
        slot = await _uploaded(client, session)
        assert await _quarantined(app) == []
        [uploaded] = [e for e in await audit_events(app) if e["type"] == "file.uploaded"]
        assert uploaded["details"]["promoted_from"] == slot["upload"]["fields"]["key"]

    async def test_a_completion_that_did_not_commit_is_finished_by_the_next(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        """The upload was copied and checked, then recording it failed: the upload is still
        in quarantine, so completing again checks it again; the first copy is an orphan."""
        session = await create_session(client)
        slot = (await request_slot(client, session)).json()
        await post_form(client, slot["upload"], PDF)
        complete = f"{_files(slot['file']['id'])}/complete"
        async with failing_insert(app, "audit_events"):
            failed = await client.post(complete, headers=holder(session))
        assert failed.status_code == 500
        assert await _quarantined(app) == [slot["upload"]["fields"]["key"]]

        completed = await client.post(complete, headers=holder(session))
        assert completed.status_code == 200
        assert completed.json()["status"] == "uploaded"
        assert await _quarantined(app) == []
        [row] = await file_rows(app)
        stored = [info.key async for info in app.resources.store.list_prefix("uploads/")]
        assert row["storage_key"] in stored
        assert len(stored) == 1  # the failed attempt's copy was discarded

    async def test_a_replay_before_completion_is_what_gets_checked(
        self, client: httpx.AsyncClient, app: Running, store_backend: str
    ) -> None:
        """While the file is pending a second post replaces the first (S3) or is refused
        (local); either way complete checks the bytes it then serves."""
        session = await create_session(client)
        slot = (await request_slot(client, session)).json()
        await post_form(client, slot["upload"], PDF)
        await _replay(client, slot, store_backend)
        completed = await client.post(
            f"{_files(slot['file']['id'])}/complete", headers=holder(session)
        )
        if store_backend == "s3":
            assert_problem(completed, 422, "upload_rejected")
            assert await _quarantined(app) == []
        else:
            assert completed.status_code == 200

    async def test_erasure_empties_the_sessions_quarantine_at_once(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        """An upload posted but never completed is erased with the rest, not left to cleanup."""
        session = await create_session(client)
        slot = (await request_slot(client, session)).json()
        await post_form(client, slot["upload"], PDF)
        assert await _quarantined(app) == [slot["upload"]["fields"]["key"]]
        assert (await client.delete("/api/v1/session", headers=holder(session))).status_code == 204
        assert await _quarantined(app) == []
