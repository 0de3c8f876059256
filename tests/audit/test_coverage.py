"""Refused requests are audited too: rejected input (422) and denied API keys (401/403)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.faults import failing_insert
from tests.helpers import Running, assert_problem, audit_events, create_session, holder

SERVICE_KEY = "svc-" + "c" * 40
ADMIN_KEY = "adm-" + "c" * 40


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"service_api_keys": [SERVICE_KEY], "admin_api_keys": [ADMIN_KEY]}


class TestRejectedInput:
    async def test_a_422_is_audited_without_the_rejected_value(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        secret = "not-a-uuid-but-maybe-personal@example.org"
        response = await client.post("/api/v1/sessions", json={"id": secret})
        assert_problem(response, 422, "validation_error")
        [event] = await audit_events(app)
        assert (event["type"], event["outcome"]) == ("request.rejected", "failure")
        assert event["details"] == {
            "code": "validation_error",
            "fields": [{"loc": ["body", "id"], "type": "value_error"}],
            "method": "POST",
            "path": "/api/v1/sessions",
        }
        assert secret not in str(event)

    async def test_service_rule_422s_are_audited_with_their_code_and_session(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        session = await create_session(client)
        sid = session["id"]
        response = await client.post(
            "/api/v1/session/uploads",
            headers=holder(session),
            json={"name": "a.exe", "content_type": "application/x-msdownload", "size": 10},
        )
        assert_problem(response, 422, "unsupported_content_type")
        event = (await audit_events(app))[-1]
        assert event["type"] == "request.rejected"
        assert event["session_id"] == sid
        assert event["details"]["code"] == "unsupported_content_type"
        assert session["token"] not in str(event)

    async def test_a_failing_audit_write_does_not_change_the_answer(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        async with failing_insert(app, "audit_events"):
            response = await client.post("/api/v1/sessions", json={"id": "x"})
        assert_problem(response, 422, "validation_error")


class TestDeniedKeys:
    @pytest.mark.parametrize(
        ("headers", "status", "reason"),
        [
            ({}, 401, "missing"),
            ({"Authorization": "Bearer wrong"}, 401, "unauthorized"),
            ({"Authorization": f"Bearer {ADMIN_KEY}"}, 403, "forbidden"),
        ],
    )
    async def test_denials_are_audited_without_the_key(
        self,
        client: httpx.AsyncClient,
        app: Running,
        headers: dict[str, str],
        status: int,
        reason: str,
    ) -> None:
        response = await client.get(f"/api/v1/sessions/{uuid.uuid4()}", headers=headers)
        assert response.status_code == status
        [event] = await audit_events(app)
        assert event["type"] == "auth.denied"
        assert event["details"]["role"] == "service"
        assert event["details"]["reason"] == reason
        assert ADMIN_KEY not in str(event)
        assert "wrong" not in str(event["details"])


class TestAttribution:
    """A refused request names a session only when its token was checked and valid."""

    async def test_a_header_alone_attributes_nothing(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        victim = await create_session(client)
        response = await client.post("/api/v1/sessions", json={"id": "x"}, headers=holder(victim))
        assert_problem(response, 422, "validation_error")
        event = (await audit_events(app))[-1]
        assert event["type"] == "request.rejected"
        assert event["session_id"] is None
        assert victim["token"] not in str(event)
