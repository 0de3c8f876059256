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
    holder,
    session_row,
    validate,
)

URL = "/api/v1/session/reset"
NOTICE = "Your session has been reset due to a technical issue. Please start again."


async def reset(
    client: httpx.AsyncClient, old_token: str | None, reason: str = "expired"
) -> httpx.Response:
    headers = {} if old_token is None else holder(old_token)
    return await client.post(URL, headers=headers, json={"reason": reason})


class TestReset:
    async def test_old_session_is_superseded_and_new_one_points_back(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        old = await create_session(client)
        response = await reset(client, old["token"], "tampered")
        assert response.status_code == 201
        assert response.headers["location"] == "/api/v1/session"
        body = response.json()
        assert body["notice"] == NOTICE == RESET_NOTICE
        new = body["session"]
        assert new["id"] != old["id"]
        assert uuid.UUID(new["id"]).version == 4
        assert uuid.UUID(new["token"]).version == 4
        assert new["token"] not in (old["token"], new["id"])
        assert new["status"] == "active"
        assert new["previous_session_id"] == old["id"]
        old_row = await session_row(app, old["id"])
        assert old_row is not None
        assert old_row["status"] == "reset"
        assert old_row["previous_session_id"] is None  # the old one points to nothing
        assert old_row["token_digest"] is None  # its token is gone, kept only as a tombstone

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
            "old_token": "found",
            "superseded": True,
        }
        assert old["token"] not in str(events)
        assert new["token"] not in str(events)

    async def test_the_new_session_is_valid_and_the_old_token_not(
        self, client: httpx.AsyncClient
    ) -> None:
        old = await create_session(client)
        new = (await reset(client, old["token"])).json()["session"]
        body = await validate(client, new["token"])
        assert body["valid"] is True
        assert body["session"]["id"] == new["id"]
        assert await validate(client, old["token"]) == {
            "valid": False,
            "reason": "reset",
            "action": "reset",
        }

    async def test_without_a_header(self, client: httpx.AsyncClient, app: Running) -> None:
        response = await reset(client, None, "missing")
        assert response.status_code == 201
        assert response.json()["session"]["previous_session_id"] is None
        [event] = await audit_events(app)
        assert event["details"]["old_token"] == "absent"

    async def test_with_a_malformed_header(self, client: httpx.AsyncClient, app: Running) -> None:
        response = await reset(client, "tampered-value", "malformed")
        assert response.status_code == 201
        assert response.json()["session"]["previous_session_id"] is None
        [event] = await audit_events(app)
        assert event["details"]["old_token"] == "malformed"

    async def test_with_an_unknown_token(self, client: httpx.AsyncClient, app: Running) -> None:
        response = await reset(client, str(uuid.uuid4()), "not_found")
        assert response.status_code == 201
        assert response.json()["session"]["previous_session_id"] is None
        assert await count_sessions(app) == 1
        [event] = await audit_events(app)
        assert event["details"]["old_token"] == "unknown"

    async def test_a_public_id_resets_nothing(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        other = await create_session(client)
        response = await reset(client, other["id"], "not_found")
        assert response.status_code == 201
        assert response.json()["session"]["previous_session_id"] is None
        row = await session_row(app, other["id"])
        assert row is not None
        assert row["status"] == "active"
        assert (await validate(client, other["token"]))["valid"] is True
        events = await audit_events(app)
        assert "session.superseded" not in [e["type"] for e in events]
        assert events[-1]["details"]["old_token"] == "unknown"

    async def test_with_the_token_of_an_erased_session(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        old = await create_session(client)
        assert (await client.delete("/api/v1/session", headers=holder(old))).status_code == 204
        response = await reset(client, old["token"], "not_found")
        assert response.status_code == 201
        assert response.json()["session"]["previous_session_id"] is None
        assert await count_sessions(app) == 1
        event = (await audit_events(app))[-1]
        assert event["type"] == "session.reset"
        assert event["details"]["old_token"] == "ended"
        assert event["details"]["superseded"] is False

    async def test_resetting_with_a_token_already_reset_is_409_and_supersedes_nothing_twice(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        old = await create_session(client)
        first = await reset(client, old["token"])
        assert first.status_code == 201
        second = await reset(client, old["token"], "reset")
        # The token was replaced: the browser takes the newest token it holds instead.
        assert_problem(second, 409, "token_replaced")
        assert await count_sessions(app) == 2
        types = [e["type"] for e in await audit_events(app)]
        assert types.count("session.superseded") == 1
        assert types.count("session.reset") == 1
        new = first.json()["session"]
        assert (await validate(client, new["token"]))["valid"] is True

    async def test_resetting_with_a_rotated_token_is_409(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        session = await create_session(client)
        details = {"name": "Ada", "email": "ada@example.org", "consent_user_data": True}
        given = await client.put("/api/v1/session/details", json=details, headers=holder(session))
        assert given.status_code == 200
        assert_problem(await reset(client, session["token"], "rotated"), 409, "token_replaced")
        row = await session_row(app, session["id"])
        assert row is not None
        assert row["status"] == "pending_verification"
        assert await count_sessions(app) == 1
        assert (await validate(client, given.json()["token"]))["valid"] is True

    async def test_an_expired_session_is_superseded_too(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        old = await create_session(client)
        clock.advance(timedelta(days=2))
        response = await reset(client, old["token"], "expired")
        assert response.json()["session"]["previous_session_id"] == old["id"]
        row = await session_row(app, old["id"])
        assert row is not None
        assert row["status"] == "reset"
        assert row["updated_at"] == clock.now


class TestResetBadInput:
    @pytest.mark.parametrize(
        ("payload", "status", "code"),
        [
            (b"", 422, "validation_error"),
            (b"{}", 422, "validation_error"),
            (b'{"reason": "because"}', 422, "validation_error"),
            (b'{"reason": "expired", "x": 1}', 422, "validation_error"),
            (b'{"reason": 1}', 422, "validation_error"),
            (b"nope", 400, "malformed_json"),
        ],
    )
    async def test_rejected_and_nothing_changes(
        self, client: httpx.AsyncClient, app: Running, payload: bytes, status: int, code: str
    ) -> None:
        old = await create_session(client)
        response = await client.post(
            URL,
            content=payload,
            headers={**holder(old), "content-type": "application/json"},
        )
        assert_problem(response, status, code)
        row = await session_row(app, old["id"])
        assert row is not None
        assert row["status"] == "active"
        assert await count_sessions(app) == 1
        assert (await validate(client, old["token"]))["valid"] is True


class TestRacingResets:
    async def test_concurrent_resets_of_one_token(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        """One reset wins; the others find the token replaced (409) and start nothing."""
        old = await create_session(client)
        responses = await asyncio.gather(*(reset(client, old["token"]) for _ in range(4)))
        assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
        [won] = [r for r in responses if r.status_code == 201]
        for lost in responses:
            if lost is not won:
                assert_problem(lost, 409, "token_replaced")
        new = won.json()["session"]
        assert new["previous_session_id"] == old["id"]
        assert await count_sessions(app) == 2
        row = await session_row(app, old["id"])
        assert row is not None
        assert row["status"] == "reset"
        events = await audit_events(app)
        superseded = [e for e in events if e["type"] == "session.superseded"]
        resets = [e for e in events if e["type"] == "session.reset"]
        assert len(superseded) == 1
        assert superseded[0]["session_id"] == old["id"]
        assert [e["session_id"] for e in resets] == [new["id"]]
        assert resets[0]["details"]["superseded"] is True
        assert (await validate(client, new["token"]))["valid"] is True
