"""Erasure leaves nothing personal anywhere; export hands everything to the holder."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import inspect, text

from session_service.app import create_app
from session_service.audit.models import AuditEvent
from session_service.core.settings import Settings
from session_service.core.sqltypes import table_of
from session_service.files.names import session_prefix
from session_service.privacy.export import ExportDocument
from tests import moto_server
from tests.conftest import FakeClock, service_log_lines
from tests.files.helpers import PDF, fetch, request_slot, upload_file
from tests.helpers import (
    Running,
    assert_problem,
    audit_events,
    create_session,
    holder,
    running,
    session_row,
)

NAME, EMAIL = "Grace Hopper", "grace.hopper@example.navy"
SERVICE_KEY = "svc-" + "e" * 40


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"service_api_keys": [SERVICE_KEY], "access_log": True}


async def _holder_with_data(client: httpx.AsyncClient) -> tuple[str, str, dict[str, Any]]:
    """A session with details, an uploaded file and a pending one: (id, token, file).

    The token is the one the details answer carried: it replaced the one sent with them.
    """
    session = await create_session(client)
    details = {"name": NAME, "email": EMAIL, "consent_user_data": True}
    put = await client.put("/api/v1/session/details", headers=holder(session), json=details)
    assert put.status_code == 200
    token = str(put.json()["token"])
    file = await upload_file(client, token, name=f"{NAME} CV.pdf")
    await request_slot(client, token, name="pending.pdf")
    return str(session["id"]), token, file


async def _every_table_text(app: Running) -> str:
    async with app.resources.engine.connect() as conn:
        tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        dump = []
        for table in tables:
            rows = (await conn.execute(text(f'SELECT * FROM "{table}"'))).all()
            dump.append(repr(rows))
    return "\n".join(dump)


async def _objects(app: Running, storage_id: uuid.UUID) -> list[str]:
    return [info.key async for info in app.resources.store.list_prefix(session_prefix(storage_id))]


class TestErasure:
    async def test_holder_erasure_leaves_nothing_personal(
        self, client: httpx.AsyncClient, app: Running, json_log: io.StringIO
    ) -> None:
        sid, token, _ = await _holder_with_data(client)
        row = await session_row(app, sid)
        assert row is not None
        assert len(await _objects(app, row["storage_id"])) == 1

        response = await client.delete("/api/v1/session", headers=holder(token))
        assert response.status_code == 204

        assert await session_row(app, sid) is None
        assert await _objects(app, row["storage_id"]) == []
        everything = await _every_table_text(app)
        log_output = json.dumps(service_log_lines(json_log))
        for secret in (NAME, EMAIL, "Grace", "grace.hopper"):
            assert secret not in everything
            assert secret not in log_output
        # Nor the token: the database keeps only its digest (now a tombstone's).
        assert token not in everything
        assert token not in log_output
        erased = [e for e in await audit_events(app) if e["type"] == "session.erased"]
        assert [e["session_id"] for e in erased] == [sid]
        assert erased[0]["details"] == {"by": "holder", "files": 2, "messages": 0}

    async def test_erasing_twice(self, client: httpx.AsyncClient) -> None:
        sid, token, _ = await _holder_with_data(client)
        assert (await client.delete("/api/v1/session", headers=holder(token))).status_code == 204
        again = await client.delete("/api/v1/session", headers=holder(token))
        assert assert_problem(again, 401, "session_invalid")["reason"] == "not_found"
        by_service = await client.delete(
            f"/api/v1/sessions/{sid}", headers={"Authorization": f"Bearer {SERVICE_KEY}"}
        )
        assert_problem(by_service, 404, "session_not_found")

    async def test_service_erasure(self, client: httpx.AsyncClient, app: Running) -> None:
        sid, _, _ = await _holder_with_data(client)
        response = await client.delete(
            f"/api/v1/sessions/{sid}", headers={"Authorization": f"Bearer {SERVICE_KEY}"}
        )
        assert response.status_code == 204
        assert await session_row(app, sid) is None
        assert NAME not in await _every_table_text(app)
        assert (await audit_events(app))[-1]["details"]["by"] == "service"

    async def test_concurrent_erasures_erase_once(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        """One erasure wins; the others wait for it, then answer that the session is gone."""
        sid, token, _ = await _holder_with_data(client)
        service = {"Authorization": f"Bearer {SERVICE_KEY}"}
        answers = await asyncio.gather(
            *(client.delete("/api/v1/session", headers=holder(token)) for _ in range(6)),
            *(client.delete(f"/api/v1/sessions/{sid}", headers=service) for _ in range(6)),
        )
        statuses = [response.status_code for response in answers]
        assert statuses.count(204) == 1, statuses
        for response in answers[:6]:
            if response.status_code != 204:
                assert assert_problem(response, 401, "session_invalid")["reason"] == "not_found"
        for response in answers[6:]:
            if response.status_code != 204:
                assert_problem(response, 404, "session_not_found")
        erased = [e for e in await audit_events(app) if e["type"] == "session.erased"]
        assert [e["session_id"] for e in erased] == [sid]


class TestErasureWithStorageDown:
    @pytest.fixture
    def store_backend(self) -> str:
        return "s3"

    async def test_database_part_commits_and_objects_are_left_for_cleanup(
        self, client: httpx.AsyncClient, app: Running, settings: Settings, clock: FakeClock
    ) -> None:
        sid, token, _ = await _holder_with_data(client)
        row = await session_row(app, sid)
        assert row is not None
        closed = f"http://127.0.0.1:{moto_server.free_port()}"
        update = {"s3_endpoint_url": closed, "s3_max_attempts": 0, "s3_connect_timeout": 1.0}
        down = create_app(settings.with_overrides(**update), clock=clock)
        async with running(down) as started:
            transport = httpx.ASGITransport(app=started)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                response = await http.delete("/api/v1/session", headers=holder(token))
        assert response.status_code == 202
        body = response.json()
        assert (body["erased"], body["storage"], body["files"]) == (True, "unreachable", 2)
        assert "cleanup" in body["detail"]
        assert await session_row(app, sid) is None
        assert NAME not in await _every_table_text(app)
        # The object is still in storage, under a prefix that belongs to no session now.
        assert len(await _objects(app, row["storage_id"])) == 1
        event = (await audit_events(app))[-1]
        assert (event["type"], event["details"]) == (
            "session.erased",
            {"by": "holder", "files": 2, "messages": 0},
        )


class TestExport:
    async def test_export_is_one_json_attachment_with_everything(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        sid, token, file = await _holder_with_data(client)
        response = await client.get("/api/v1/session/export", headers=holder(token))
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        assert response.headers["content-disposition"].startswith("attachment;")
        document = response.json()
        ExportDocument.model_validate(document)  # what openapi.json declares
        assert document["format"] == "session-service.export.v3"
        assert document["session"]["id"] == sid
        assert (document["session"]["name"], document["session"]["email"]) == (NAME, EMAIL)
        # Every stored field about the visitor, the caller's address and agent included.
        assert document["session"]["client_ip"] == "127.0.0.1"
        assert "user_agent" in document["session"]
        assert document["session"]["consent_given_at"] is not None
        assert "token_digest" not in response.text
        assert token not in response.text
        assert document["previous_sessions"] == []
        files = {f["id"]: f for f in document["files"]}
        assert len(files) == 2
        exported = files[file["id"]]
        assert exported["status"] == "uploaded"
        downloaded = await fetch(client, exported["download_url"])
        assert downloaded.content == PDF
        assert [f["download_url"] for f in files.values() if f["status"] == "pending"] == [None]
        types = [event["type"] for event in document["audit_events"]]
        assert types[0] == "session.created"
        assert "file.uploaded" in types
        assert types[-1] == "session.exported"

    async def test_a_long_trail_is_exported_in_full(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        session = await create_session(client)
        sid = str(session["id"])
        events = table_of(AuditEvent)
        async with app.resources.engine.begin() as conn:
            await conn.execute(
                events.insert(),
                [
                    {
                        "occurred_at": clock.now,
                        "type": "session.validated",
                        "session_id": uuid.UUID(sid),
                        "outcome": "success",
                        "details": {"n": n},
                    }
                    for n in range(1234)
                ],
            )
        response = await client.get("/api/v1/session/export", headers=holder(session))
        events = response.json()["audit_events"]
        assert len(events) == 1 + 1234 + 1  # created, the trail, the export itself
        ids = [event["id"] for event in events]
        assert ids == sorted(ids)
        assert len(set(ids)) == len(ids)

    async def test_the_trails_of_the_sessions_this_one_replaced_are_included(
        self, client: httpx.AsyncClient
    ) -> None:
        first = await create_session(client)
        second = (
            await client.post(
                "/api/v1/session/reset", json={"reason": "expired"}, headers=holder(first)
            )
        ).json()["session"]
        third = (
            await client.post(
                "/api/v1/session/reset", json={"reason": "tampered"}, headers=holder(second)
            )
        ).json()["session"]
        unrelated = await create_session(client)
        document = (await client.get("/api/v1/session/export", headers=holder(third))).json()
        previous = document["previous_sessions"]
        assert [entry["id"] for entry in previous] == [second["id"], first["id"]]
        assert [e["type"] for e in previous[1]["audit_events"]] == [
            "session.created",
            "session.superseded",
        ]
        assert {e["session_id"] for entry in previous for e in entry["audit_events"]} == {
            first["id"],
            second["id"],
        }
        assert unrelated["id"] not in str(document)

    async def test_export_needs_a_valid_session(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/v1/session/export", headers={"X-Session-ID": "x"})
        assert_problem(response, 401, "session_invalid")
        # The public id names the session but is no credential.
        public_id = str((await create_session(client))["id"])
        response = await client.get("/api/v1/session/export", headers={"X-Session-ID": public_id})
        assert assert_problem(response, 401, "session_invalid")["reason"] == "not_found"
