"""POST /api/v1/session/reset: superseding, the notice, bad input and racing resets."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
import pytest

from session_service.sessions.schemas import RESET_NOTICE
from tests.conftest import FakeClock
from tests.helpers import (
    Running,
    assert_problem,
    audit_events,
    count_sessions,
    create_session,
    session_row,
)

URL = "/api/v1/session/reset"
NOTICE = "Your session has been reset due to a technical issue. Please start again."


async def reset(
    client: httpx.AsyncClient, old_id: str | None, reason: str = "expired"
) -> httpx.Response:
    headers = {} if old_id is None else {"X-Session-ID": old_id}
    return await client.post(URL, headers=headers, json={"reason": reason})


class TestReset:
    async def test_old_session_is_superseded_and_new_one_points_back(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        old = await create_session(client)
        response = await reset(client, old["id"], "tampered")
        assert response.status_code == 201
        assert response.headers["location"] == "/api/v1/session"
        body = response.json()
        assert body["notice"] == NOTICE == RESET_NOTICE
        new = body["session"]
        assert new["id"] != old["id"]
        assert uuid.UUID(new["id"]).version == 4
        assert new["status"] == "active"
        assert new["previous_session_id"] == old["id"]
        old_row = await session_row(app, old["id"])
        assert old_row is not None
        assert old_row["status"] == "reset"
        assert old_row["previous_session_id"] is None  # the old one points to nothing

        events = await audit_events(app)
        assert [e["type"] for e in events] == [
            "session.created",
            "session.superseded",
            "session.reset",
        ]
        superseded, created = events[1], events[2]
        assert superseded["session_id"] == old["id"]
        assert superseded["details"] == {"new_session_id": new["id"], "reason": "tampered"}
        assert created["session_id"] == new["id"]
        assert created["details"] == {
            "reason": "tampered",
            "previous_session_id": old["id"],
            "old_id": "found",
            "superseded": True,
        }

    async def test_the_new_session_is_valid(self, client: httpx.AsyncClient) -> None:
        old = await create_session(client)
        new = (await reset(client, old["id"])).json()["session"]
        response = await client.post(
            "/api/v1/session/validate", headers={"X-Session-ID": new["id"]}
        )
        assert response.json()["valid"] is True

    async def test_without_a_header(self, client: httpx.AsyncClient, app: Running) -> None:
        response = await reset(client, None, "missing")
        assert response.status_code == 201
        assert response.json()["session"]["previous_session_id"] is None
        [event] = await audit_events(app)
        assert event["details"]["old_id"] == "absent"

    async def test_with_a_malformed_header(self, client: httpx.AsyncClient, app: Running) -> None:
        response = await reset(client, "tampered-value", "malformed")
        assert response.status_code == 201
        assert response.json()["session"]["previous_session_id"] is None
        [event] = await audit_events(app)
        assert event["details"]["old_id"] == "malformed"

    async def test_with_an_unknown_id(self, client: httpx.AsyncClient, app: Running) -> None:
        response = await reset(client, str(uuid.uuid4()), "not_found")
        assert response.status_code == 201
        assert response.json()["session"]["previous_session_id"] is None
        assert await count_sessions(app) == 1
        [event] = await audit_events(app)
        assert event["details"]["old_id"] == "unknown"

    async def test_resetting_an_already_reset_session_supersedes_nothing_twice(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        old = await create_session(client)
        await reset(client, old["id"])
        second = await reset(client, old["id"], "reset")
        assert second.status_code == 201
        assert second.json()["session"]["previous_session_id"] == old["id"]
        types = [e["type"] for e in await audit_events(app)]
        assert types.count("session.superseded") == 1
        assert types.count("session.reset") == 2

    async def test_an_expired_session_is_superseded_too(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        old = await create_session(client)
        clock.advance(timedelta(days=2))
        response = await reset(client, old["id"], "expired")
        assert response.json()["session"]["previous_session_id"] == old["id"]
        row = await session_row(app, old["id"])
        assert row is not None
        assert row["status"] == "reset"
        assert row["updated_at"] == clock.now


class TestResetBadInput:
    @pytest.mark.parametrize(
        "payload",
        [b"", b"{}", b'{"reason": "because"}', b'{"reason": "expired", "x": 1}', b"nope"],
    )
    async def test_rejected_and_nothing_changes(
        self, client: httpx.AsyncClient, app: Running, payload: bytes
    ) -> None:
        old = await create_session(client)
        response = await client.post(
            URL,
            content=payload,
            headers={"X-Session-ID": old["id"], "content-type": "application/json"},
        )
        assert_problem(response, 422, "validation_error")
        row = await session_row(app, old["id"])
        assert row is not None
        assert row["status"] == "active"
        assert await count_sessions(app) == 1


class TestRacingResets:
    async def test_concurrent_resets_of_one_session(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        old = await create_session(client)
        responses = await asyncio.gather(*(reset(client, old["id"]) for _ in range(4)))
        assert [r.status_code for r in responses] == [201] * 4
        new_ids = {r.json()["session"]["id"] for r in responses}
        assert len(new_ids) == 4
        assert all(r.json()["session"]["previous_session_id"] == old["id"] for r in responses)
        row = await session_row(app, old["id"])
        assert row is not None
        assert row["status"] == "reset"
        events = await audit_events(app)
        superseded = [e for e in events if e["type"] == "session.superseded"]
        resets = [e for e in events if e["type"] == "session.reset"]
        assert len(superseded) == 1
        assert superseded[0]["session_id"] == old["id"]
        assert sorted(e["session_id"] for e in resets) == sorted(new_ids)
        assert sum(e["details"]["superseded"] for e in resets) == 1
