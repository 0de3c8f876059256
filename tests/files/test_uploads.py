"""Uploads end to end, on every storage backend: slot, post, complete, list, download, delete."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
import pytest

from tests.conftest import FakeClock
from tests.files.helpers import (
    PDF,
    fetch,
    file_rows,
    put_directly,
    request_slot,
    upload_file,
)
from tests.helpers import Running, assert_problem, audit_events, create_session, session_row


@pytest.fixture
async def sid(client: httpx.AsyncClient) -> str:
    return str((await create_session(client))["id"])


def _path(file_id: str, action: str = "") -> str:
    return f"/api/v1/session/files/{file_id}" + (f"/{action}" if action else "")


class TestSlot:
    async def test_slot_records_a_pending_file_and_returns_the_form(
        self, client: httpx.AsyncClient, app: Running, sid: str, clock: FakeClock
    ) -> None:
        response = await request_slot(client, sid, name="Quarterly report.pdf")
        assert response.status_code == 201
        body = response.json()
        file, upload = body["file"], body["upload"]
        assert file["status"] == "pending"
        assert file["name"] == "Quarterly report.pdf"
        assert file["size"] == len(PDF)
        assert upload["url"].startswith("http")
        session = await session_row(app, sid)
        assert session is not None
        storage_id = session["storage_id"]
        assert upload["fields"]["key"] == f"uploads/{storage_id}/{file['id']}/Quarterly_report.pdf"
        assert sid not in upload["url"]
        assert upload["fields"]["Content-Type"] == "application/pdf"
        expires = clock.now + timedelta(minutes=5)
        assert upload["expires_at"] == expires.isoformat().replace("+00:00", "Z")
        [row] = await file_rows(app)
        assert row["status"] == "pending"
        event = (await audit_events(app))[-1]
        assert event["type"] == "file.slot_issued"
        assert event["session_id"] == sid
        assert event["details"]["file_id"] == file["id"]

    @pytest.mark.parametrize(
        ("payload", "code"),
        [
            ({"content_type": "text/html"}, "unsupported_content_type"),
            ({"content_type": "image/png"}, "unsupported_content_type"),
            ({"size": 0}, "validation_error"),
            ({"size": -5}, "validation_error"),
            ({"size": 5 * 1024 * 1024 + 1}, "file_too_large"),
            ({"name": "../../etc/passwd.pdf"}, "validation_error"),
            ({"name": "..\\..\\boot.ini.pdf"}, "validation_error"),
            ({"name": "x" * 5000 + ".pdf"}, "validation_error"),
            ({"name": ""}, "validation_error"),
            ({"name": "   "}, "validation_error"),
            ({"name": "bad\x00name.pdf"}, "validation_error"),
            ({"name": ".."}, "validation_error"),
        ],
    )
    async def test_bad_requests_are_refused_and_leave_nothing(
        self,
        client: httpx.AsyncClient,
        app: Running,
        sid: str,
        payload: dict[str, object],
        code: str,
    ) -> None:
        body = {"name": "a.pdf", "content_type": "application/pdf", "size": 100, **payload}
        response = await client.post(
            "/api/v1/session/uploads", headers={"X-Session-ID": sid}, json=body
        )
        assert_problem(response, 422, code)
        assert await file_rows(app) == []

    async def test_unknown_fields_are_refused(self, client: httpx.AsyncClient, sid: str) -> None:
        body = {"name": "a.pdf", "content_type": "application/pdf", "size": 1, "key": "x"}
        response = await client.post(
            "/api/v1/session/uploads", headers={"X-Session-ID": sid}, json=body
        )
        assert_problem(response, 422, "validation_error")

    async def test_invalid_or_reset_sessions_get_no_slot(
        self, client: httpx.AsyncClient, app: Running, sid: str
    ) -> None:
        for session_id in (str(uuid.uuid4()), "garbage"):
            response = await request_slot(client, session_id)
            assert_problem(response, 401, "session_invalid")
        await client.post(
            "/api/v1/session/reset", headers={"X-Session-ID": sid}, json={"reason": "tampered"}
        )
        response = await request_slot(client, sid)
        assert assert_problem(response, 401, "session_invalid")["reason"] == "reset"
        assert await file_rows(app) == []


class TestLimits:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"upload_max_files": 2, "upload_session_quota_bytes": 1000}

    async def test_file_count_limit(self, client: httpx.AsyncClient, sid: str) -> None:
        for _ in range(2):
            assert (await request_slot(client, sid, size=10)).status_code == 201
        response = await request_slot(client, sid, size=10)
        assert assert_problem(response, 409, "file_limit_reached")["max_files"] == 2

    async def test_byte_quota(self, client: httpx.AsyncClient, sid: str) -> None:
        assert (await request_slot(client, sid, size=900)).status_code == 201
        response = await request_slot(client, sid, size=101)
        body = assert_problem(response, 409, "quota_exceeded")
        assert body["used_bytes"] == 900

    async def test_concurrent_slots_never_pass_the_limit(
        self, client: httpx.AsyncClient, app: Running, sid: str
    ) -> None:
        responses = await asyncio.gather(*(request_slot(client, sid, size=10) for _ in range(6)))
        statuses = sorted(response.status_code for response in responses)
        assert statuses == [201, 201, 409, 409, 409, 409]
        assert len(await file_rows(app)) == 2

    async def test_rejected_files_free_their_place(
        self, client: httpx.AsyncClient, app: Running, sid: str
    ) -> None:
        created = (await request_slot(client, sid, size=10)).json()
        await put_directly(
            app, created["upload"]["fields"]["key"], b"not a pdf!", "application/pdf"
        )
        await client.post(_path(created["file"]["id"], "complete"), headers={"X-Session-ID": sid})
        assert (await request_slot(client, sid, size=10)).status_code == 201
        assert (await request_slot(client, sid, size=10)).status_code == 201


class TestCompletion:
    async def test_full_flow(self, client: httpx.AsyncClient, app: Running, sid: str) -> None:
        file = await upload_file(client, sid)
        assert file["status"] == "uploaded"
        assert file["stored_size"] == len(PDF)
        assert file["uploaded_at"] is not None
        types = [event["type"] for event in await audit_events(app)]
        assert types[-2:] == ["file.slot_issued", "file.uploaded"]

    async def test_completing_twice_is_idempotent(
        self, client: httpx.AsyncClient, app: Running, sid: str
    ) -> None:
        file = await upload_file(client, sid)
        again = await client.post(_path(file["id"], "complete"), headers={"X-Session-ID": sid})
        assert again.status_code == 200
        assert again.json() == file
        types = [event["type"] for event in await audit_events(app)]
        assert types.count("file.uploaded") == 1

    async def test_completing_before_the_upload_is_409_and_stays_pending(
        self, client: httpx.AsyncClient, app: Running, sid: str
    ) -> None:
        created = (await request_slot(client, sid)).json()
        response = await client.post(
            _path(created["file"]["id"], "complete"), headers={"X-Session-ID": sid}
        )
        assert_problem(response, 409, "upload_missing")
        [row] = await file_rows(app)
        assert row["status"] == "pending"

    @pytest.mark.parametrize(
        ("content", "stored_type", "reason"),
        [
            (b"GIF89a".ljust(len(PDF), b"\x00"), "application/pdf", "signature_mismatch"),
            (
                b"<html><script>alert(1)</script>".ljust(len(PDF)),
                "application/pdf",
                "signature_mismatch",
            ),
            (PDF + b"more bytes than declared", "application/pdf", "size_mismatch"),
            (PDF[:100], "application/pdf", "size_mismatch"),
            (PDF, "text/html", "type_mismatch"),
        ],
    )
    async def test_what_the_policy_would_refuse_is_rejected_at_completion(
        self,
        client: httpx.AsyncClient,
        app: Running,
        sid: str,
        content: bytes,
        stored_type: str,
        reason: str,
    ) -> None:
        created = (await request_slot(client, sid)).json()
        key = created["upload"]["fields"]["key"]
        # Stored without the policy's checks, as a store that enforces none would (moto).
        await put_directly(app, key, content, stored_type)
        file_id = created["file"]["id"]
        response = await client.post(_path(file_id, "complete"), headers={"X-Session-ID": sid})
        assert assert_problem(response, 422, "upload_rejected")["reason"] == reason
        assert await app.resources.store.inspect(key, first_bytes=0) is None
        [row] = await file_rows(app)
        assert row["status"] == "rejected"
        assert row["rejection_reason"] == reason
        event = (await audit_events(app))[-1]
        assert (event["type"], event["outcome"]) == ("file.rejected", "failure")
        again = await client.post(_path(file_id, "complete"), headers={"X-Session-ID": sid})
        assert assert_problem(again, 422, "upload_rejected")["reason"] == reason

    async def test_another_sessions_file_is_not_found(
        self, client: httpx.AsyncClient, app: Running, sid: str
    ) -> None:
        file = await upload_file(client, sid)
        other = str((await create_session(client))["id"])
        headers = {"X-Session-ID": other}
        for method, path in (
            ("POST", _path(file["id"], "complete")),
            ("GET", _path(file["id"], "download")),
            ("DELETE", _path(file["id"])),
        ):
            response = await client.request(method, path, headers=headers)
            assert_problem(response, 404, "file_not_found")
        [row] = await file_rows(app)
        assert row["status"] == "uploaded"

    async def test_malformed_file_id_is_422(self, client: httpx.AsyncClient, sid: str) -> None:
        response = await client.post(_path("not-a-uuid", "complete"), headers={"X-Session-ID": sid})
        assert_problem(response, 422, "validation_error")


class TestListDownloadDelete:
    async def test_list_shows_the_sessions_files_only(
        self, client: httpx.AsyncClient, sid: str, clock: FakeClock
    ) -> None:
        first = await upload_file(client, sid, name="a.pdf")
        clock.advance(timedelta(seconds=1))
        pending = (await request_slot(client, sid, name="b.pdf")).json()["file"]
        other = str((await create_session(client))["id"])
        await upload_file(client, other)
        response = await client.get("/api/v1/session/files", headers={"X-Session-ID": sid})
        assert response.status_code == 200
        assert [f["id"] for f in response.json()["files"]] == [first["id"], pending["id"]]

    async def test_download_serves_the_file_as_an_attachment(
        self, client: httpx.AsyncClient, app: Running, sid: str
    ) -> None:
        file = await upload_file(client, sid, name='Résumé "final".pdf')
        response = await client.get(_path(file["id"], "download"), headers={"X-Session-ID": sid})
        assert response.status_code == 200
        url = response.json()["url"]
        assert sid not in url  # the session id never travels in a URL
        served = await fetch(client, url)
        assert served.status_code == 200
        assert served.content == PDF
        disposition = served.headers["content-disposition"]
        assert disposition.startswith("attachment;")
        assert "filename*=UTF-8''R%C3%A9sum%C3%A9%20%22final%22.pdf" in disposition
        assert (await audit_events(app))[-1]["type"] == "file.download_issued"

    async def test_download_of_a_pending_file_is_409(
        self, client: httpx.AsyncClient, sid: str
    ) -> None:
        pending = (await request_slot(client, sid)).json()["file"]
        response = await client.get(_path(pending["id"], "download"), headers={"X-Session-ID": sid})
        assert_problem(response, 409, "file_not_uploaded")

    async def test_delete_removes_object_and_row(
        self, client: httpx.AsyncClient, app: Running, sid: str
    ) -> None:
        file = await upload_file(client, sid)
        [row] = await file_rows(app)
        response = await client.delete(_path(file["id"]), headers={"X-Session-ID": sid})
        assert response.status_code == 204
        assert await file_rows(app) == []
        assert await app.resources.store.inspect(row["storage_key"], first_bytes=0) is None
        assert (await audit_events(app))[-1]["type"] == "file.deleted"
        again = await client.delete(_path(file["id"]), headers={"X-Session-ID": sid})
        assert_problem(again, 404, "file_not_found")
