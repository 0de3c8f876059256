"""Uploads end to end, on every storage backend: slot, post, complete, list, download, delete."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

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
from tests.helpers import (
    Running,
    assert_problem,
    audit_events,
    create_session,
    holder,
    session_row,
)


@pytest.fixture
async def session(client: httpx.AsyncClient) -> dict[str, Any]:
    """A new session: its public `id`, and the secret `token` its holder sends."""
    return await create_session(client)


@pytest.fixture
def sid(session: dict[str, Any]) -> str:
    """The session's public id (names it in the database, the audit trail and storage)."""
    return str(session["id"])


def _path(file_id: str, action: str = "") -> str:
    return f"/api/v1/session/files/{file_id}" + (f"/{action}" if action else "")


class TestSlot:
    async def test_slot_records_a_pending_file_and_returns_the_form(
        self,
        client: httpx.AsyncClient,
        app: Running,
        session: dict[str, Any],
        sid: str,
        clock: FakeClock,
    ) -> None:
        response = await request_slot(client, session, name="Quarterly report.pdf")
        assert response.status_code == 201
        body = response.json()
        file, upload = body["file"], body["upload"]
        assert file["status"] == "pending"
        assert file["name"] == "Quarterly report.pdf"
        assert file["size"] == len(PDF)
        assert upload["url"].startswith("http")
        stored = await session_row(app, sid)
        assert stored is not None
        storage_id = stored["storage_id"]
        assert storage_id == uuid.UUID(sid)  # a new session's objects go under its public id
        # Server ids only: the name is personal data and stays in the file row.
        # The form writes to quarantine; complete checks a copy under a key of its own.
        assert upload["fields"]["key"] == f"incoming/{storage_id}/{file['id']}"
        [row] = await file_rows(app)
        assert row["storage_key"] == f"uploads/{storage_id}/{file['id']}"
        assert "Quarterly" not in upload["url"] + str(upload["fields"])
        # The token is the secret and never travels in a URL or form (the public id may).
        assert session["token"] not in upload["url"]
        assert session["token"] not in str(upload["fields"])
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
            # JSON of another type is refused, never coerced.
            ({"size": True}, "validation_error"),
            ({"size": "12"}, "validation_error"),
            ({"size": 12.5}, "validation_error"),
            ({"size": 12.0}, "validation_error"),
            ({"size": None}, "validation_error"),
            ({"name": 5}, "validation_error"),
            ({"name": None}, "validation_error"),
            ({"content_type": 5}, "validation_error"),
            ({"content_type": ["application/pdf"]}, "validation_error"),
        ],
    )
    async def test_bad_requests_are_refused_and_leave_nothing(
        self,
        client: httpx.AsyncClient,
        app: Running,
        session: dict[str, Any],
        payload: dict[str, object],
        code: str,
    ) -> None:
        body = {"name": "a.pdf", "content_type": "application/pdf", "size": 100, **payload}
        response = await client.post("/api/v1/session/uploads", headers=holder(session), json=body)
        assert_problem(response, 422, code)
        assert await file_rows(app) == []

    async def test_unknown_fields_are_refused(
        self, client: httpx.AsyncClient, session: dict[str, Any]
    ) -> None:
        body = {"name": "a.pdf", "content_type": "application/pdf", "size": 1, "key": "x"}
        response = await client.post("/api/v1/session/uploads", headers=holder(session), json=body)
        assert_problem(response, 422, "validation_error")

    async def test_invalid_or_reset_sessions_get_no_slot(
        self, client: httpx.AsyncClient, app: Running, session: dict[str, Any], sid: str
    ) -> None:
        # An unknown token, a malformed one, and the public id (which grants nothing).
        for token in (str(uuid.uuid4()), "garbage", sid):
            response = await request_slot(client, token)
            assert_problem(response, 401, "session_invalid")
        await client.post(
            "/api/v1/session/reset", headers=holder(session), json={"reason": "tampered"}
        )
        response = await request_slot(client, session)
        assert assert_problem(response, 401, "session_invalid")["reason"] == "reset"
        assert await file_rows(app) == []


class TestLimits:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"upload_max_files": 2, "upload_session_quota_bytes": 1000}

    async def test_file_count_limit(
        self, client: httpx.AsyncClient, session: dict[str, Any]
    ) -> None:
        for _ in range(2):
            assert (await request_slot(client, session, size=10)).status_code == 201
        response = await request_slot(client, session, size=10)
        assert assert_problem(response, 409, "file_limit_reached")["max_files"] == 2

    async def test_byte_quota(self, client: httpx.AsyncClient, session: dict[str, Any]) -> None:
        assert (await request_slot(client, session, size=900)).status_code == 201
        response = await request_slot(client, session, size=101)
        body = assert_problem(response, 409, "quota_exceeded")
        assert body["used_bytes"] == 900

    async def test_concurrent_slots_never_pass_the_limit(
        self, client: httpx.AsyncClient, app: Running, session: dict[str, Any]
    ) -> None:
        responses = await asyncio.gather(
            *(request_slot(client, session, size=10) for _ in range(6))
        )
        statuses = sorted(response.status_code for response in responses)
        assert statuses == [201, 201, 409, 409, 409, 409]
        assert len(await file_rows(app)) == 2

    async def test_rejected_files_free_their_place(
        self, client: httpx.AsyncClient, app: Running, session: dict[str, Any]
    ) -> None:
        created = (await request_slot(client, session, size=10)).json()
        await put_directly(
            app, created["upload"]["fields"]["key"], b"not a pdf!", "application/pdf"
        )
        await client.post(_path(created["file"]["id"], "complete"), headers=holder(session))
        assert (await request_slot(client, session, size=10)).status_code == 201
        assert (await request_slot(client, session, size=10)).status_code == 201


class TestCompletion:
    async def test_full_flow(
        self, client: httpx.AsyncClient, app: Running, session: dict[str, Any]
    ) -> None:
        file = await upload_file(client, session)
        assert file["status"] == "uploaded"
        assert file["stored_size"] == len(PDF)
        assert file["uploaded_at"] is not None
        types = [event["type"] for event in await audit_events(app)]
        assert types[-2:] == ["file.slot_issued", "file.uploaded"]

    async def test_completing_twice_is_idempotent(
        self, client: httpx.AsyncClient, app: Running, session: dict[str, Any]
    ) -> None:
        file = await upload_file(client, session)
        again = await client.post(_path(file["id"], "complete"), headers=holder(session))
        assert again.status_code == 200
        assert again.json() == file
        types = [event["type"] for event in await audit_events(app)]
        assert types.count("file.uploaded") == 1

    async def test_completing_before_the_upload_is_409_and_stays_pending(
        self, client: httpx.AsyncClient, app: Running, session: dict[str, Any]
    ) -> None:
        created = (await request_slot(client, session)).json()
        response = await client.post(
            _path(created["file"]["id"], "complete"), headers=holder(session)
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
        session: dict[str, Any],
        content: bytes,
        stored_type: str,
        reason: str,
    ) -> None:
        created = (await request_slot(client, session)).json()
        key = created["upload"]["fields"]["key"]
        # Stored without the policy's checks, as a store that enforces none would (moto).
        await put_directly(app, key, content, stored_type)
        file_id = created["file"]["id"]
        response = await client.post(_path(file_id, "complete"), headers=holder(session))
        assert assert_problem(response, 422, "upload_rejected")["reason"] == reason
        assert await app.resources.store.inspect(key, first_bytes=0) is None
        [row] = await file_rows(app)
        assert row["status"] == "rejected"
        assert row["rejection_reason"] == reason
        event = (await audit_events(app))[-1]
        assert (event["type"], event["outcome"]) == ("file.rejected", "failure")
        again = await client.post(_path(file_id, "complete"), headers=holder(session))
        assert assert_problem(again, 422, "upload_rejected")["reason"] == reason

    async def test_another_sessions_file_is_not_found(
        self, client: httpx.AsyncClient, app: Running, session: dict[str, Any]
    ) -> None:
        file = await upload_file(client, session)
        headers = holder(await create_session(client))
        for method, path in (
            ("POST", _path(file["id"], "complete")),
            ("GET", _path(file["id"], "download")),
            ("DELETE", _path(file["id"])),
        ):
            response = await client.request(method, path, headers=headers)
            assert_problem(response, 404, "file_not_found")
        [row] = await file_rows(app)
        assert row["status"] == "uploaded"

    async def test_malformed_file_id_is_422(
        self, client: httpx.AsyncClient, session: dict[str, Any]
    ) -> None:
        response = await client.post(_path("not-a-uuid", "complete"), headers=holder(session))
        assert_problem(response, 422, "validation_error")


class TestListDownloadDelete:
    async def test_list_shows_the_sessions_files_only(
        self, client: httpx.AsyncClient, session: dict[str, Any], clock: FakeClock
    ) -> None:
        first = await upload_file(client, session, name="a.pdf")
        clock.advance(timedelta(seconds=1))
        pending = (await request_slot(client, session, name="b.pdf")).json()["file"]
        other = await create_session(client)
        await upload_file(client, other)
        response = await client.get("/api/v1/session/files", headers=holder(session))
        assert response.status_code == 200
        assert [f["id"] for f in response.json()["files"]] == [first["id"], pending["id"]]

    async def test_download_serves_the_file_as_an_attachment(
        self, client: httpx.AsyncClient, app: Running, session: dict[str, Any]
    ) -> None:
        file = await upload_file(client, session, name='Résumé "final".pdf')
        response = await client.get(_path(file["id"], "download"), headers=holder(session))
        assert response.status_code == 200
        url = response.json()["url"]
        assert session["token"] not in url  # the token (the secret) never travels in a URL
        served = await fetch(client, url)
        assert served.status_code == 200
        assert served.content == PDF
        disposition = served.headers["content-disposition"]
        assert disposition.startswith("attachment;")
        assert "filename*=UTF-8''R%C3%A9sum%C3%A9%20%22final%22.pdf" in disposition
        assert (await audit_events(app))[-1]["type"] == "file.download_issued"

    async def test_download_of_a_pending_file_is_409(
        self, client: httpx.AsyncClient, session: dict[str, Any]
    ) -> None:
        pending = (await request_slot(client, session)).json()["file"]
        response = await client.get(_path(pending["id"], "download"), headers=holder(session))
        assert_problem(response, 409, "file_not_uploaded")

    async def test_delete_removes_object_and_row(
        self, client: httpx.AsyncClient, app: Running, session: dict[str, Any]
    ) -> None:
        file = await upload_file(client, session)
        [row] = await file_rows(app)
        response = await client.delete(_path(file["id"]), headers=holder(session))
        assert response.status_code == 204
        assert await file_rows(app) == []
        assert await app.resources.store.inspect(row["storage_key"], first_bytes=0) is None
        assert (await audit_events(app))[-1]["type"] == "file.deleted"
        again = await client.delete(_path(file["id"]), headers=holder(session))
        assert_problem(again, 404, "file_not_found")
