"""POST /api/v1/session/validate: every answer, sliding expiry, audit of attempts."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import T0, FakeClock
from tests.helpers import (
    Running,
    assert_problem,
    audit_events,
    create_session,
    holder,
    session_row,
    validate,
)

URL = "/api/v1/session/validate"


class TestValidateAnswers:
    async def test_a_live_session_is_valid(self, client: httpx.AsyncClient) -> None:
        session = await create_session(client)
        body = await validate(client, session["token"])
        assert body["valid"] is True
        assert body["session"]["id"] == session["id"]
        assert "token" not in body["session"]
        assert "reason" not in body

    async def test_upper_case_token_validates_the_same_session(
        self, client: httpx.AsyncClient
    ) -> None:
        session = await create_session(client)
        body = await validate(client, session["token"].upper())
        assert body["valid"] is True
        assert body["session"]["id"] == session["id"]

    async def test_the_public_id_is_no_credential(self, client: httpx.AsyncClient) -> None:
        session = await create_session(client)
        body = await validate(client, session["id"])
        assert body == {"valid": False, "reason": "not_found", "action": "reset"}

    @pytest.mark.parametrize(
        "header",
        [None, "", "garbage", str(uuid.uuid1()), "0" * 36, "{" + "a" * 34 + "}", "é" * 36],
    )
    async def test_malformed_tokens(self, client: httpx.AsyncClient, header: str | None) -> None:
        if header is not None and not header.isascii():
            # httpx refuses non-latin-1 header values; send raw bytes instead.
            raw: dict[bytes, bytes] = {b"X-Session-ID": header.encode("utf-8")}
            response = await client.post(URL, headers=raw)
            body = response.json()
        else:
            body = await validate(client, header)
        assert body == {"valid": False, "reason": "malformed", "action": "reset"}

    async def test_unknown_token_is_not_found(self, client: httpx.AsyncClient) -> None:
        body = await validate(client, str(uuid.uuid4()))
        assert body == {"valid": False, "reason": "not_found", "action": "reset"}

    async def test_idle_session_expires(self, client: httpx.AsyncClient, clock: FakeClock) -> None:
        session = await create_session(client)
        clock.advance(timedelta(hours=24))
        assert await validate(client, session["token"]) == {
            "valid": False,
            "reason": "expired",
            "action": "reset",
        }

    async def test_reset_session_says_reset(self, client: httpx.AsyncClient) -> None:
        session = await create_session(client)
        reset = await client.post(
            "/api/v1/session/reset", headers=holder(session), json={"reason": "user_requested"}
        )
        assert reset.status_code == 201
        body = await validate(client, session["token"])
        assert body == {"valid": False, "reason": "reset", "action": "reset"}

    async def test_replaced_token_says_rotated(self, client: httpx.AsyncClient) -> None:
        session = await create_session(client)
        details = {"name": "Ada", "email": "ada@example.org", "consent_user_data": True}
        given = await client.put("/api/v1/session/details", json=details, headers=holder(session))
        assert given.status_code == 200
        body = await validate(client, session["token"])
        assert body == {"valid": False, "reason": "rotated", "action": "reset"}
        assert (await validate(client, given.json()["token"]))["valid"] is True

    async def test_erased_session_token_is_not_found(self, client: httpx.AsyncClient) -> None:
        session = await create_session(client)
        assert (await client.delete("/api/v1/session", headers=holder(session))).status_code == 204
        body = await validate(client, session["token"])
        assert body == {"valid": False, "reason": "not_found", "action": "reset"}


class TestSlidingExpiry:
    async def test_last_seen_write_is_throttled_to_once_a_minute(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        session = await create_session(client)
        clock.advance(timedelta(seconds=59))
        await validate(client, session["token"])
        row = await session_row(app, session["id"])
        assert row is not None
        assert row["last_seen_at"] == T0  # within the throttle: no write

        clock.advance(timedelta(seconds=1))
        body = await validate(client, session["token"])
        assert body["session"]["last_seen_at"] == "2026-01-15T09:31:00Z"
        row = await session_row(app, session["id"])
        assert row is not None
        assert row["last_seen_at"] == T0 + timedelta(minutes=1)
        assert row["expires_at"] == T0 + timedelta(minutes=1, hours=24)
        assert row["updated_at"] == T0  # activity is not a modification

    async def test_regular_use_keeps_a_session_alive_past_the_idle_ttl(
        self, client: httpx.AsyncClient, clock: FakeClock
    ) -> None:
        session = await create_session(client)
        for _ in range(3):
            clock.advance(timedelta(hours=20))
            assert (await validate(client, session["token"]))["valid"] is True

    async def test_an_expired_session_is_not_revived(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        session = await create_session(client)
        clock.advance(timedelta(hours=25))
        assert (await validate(client, session["token"]))["reason"] == "expired"
        row = await session_row(app, session["id"])
        assert row is not None
        assert row["last_seen_at"] == T0


class TestValidationAudit:
    async def test_failures_are_audited_by_default_and_successes_not(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        session = await create_session(client)
        await validate(client, session["token"])
        await validate(client, "garbage")
        unknown = str(uuid.uuid4())
        await validate(client, unknown)
        events = await audit_events(app)
        assert [e["type"] for e in events] == [
            "session.created",
            "session.validation_failed",
            "session.validation_failed",
        ]
        assert events[1]["details"] == {"reason": "malformed", "token_given": True}
        assert events[1]["outcome"] == "failure"
        assert events[2]["details"]["reason"] == "not_found"
        assert events[2]["session_id"] is None
        assert unknown not in str(events)

    async def test_expired_failure_names_the_session(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        session = await create_session(client)
        clock.advance(timedelta(days=2))
        await validate(client, session["token"])
        event = (await audit_events(app))[-1]
        assert event["session_id"] == session["id"]
        assert event["details"]["reason"] == "expired"
        assert session["token"] not in str(event)


class TestValidationAuditAll:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"audit_validations": "all"}

    async def test_every_attempt_is_audited(self, client: httpx.AsyncClient, app: Running) -> None:
        session = await create_session(client)
        await validate(client, session["token"])
        await validate(client, None)
        events = await audit_events(app)
        assert [(e["type"], e["outcome"]) for e in events] == [
            ("session.created", "success"),
            ("session.validated", "success"),
            ("session.validation_failed", "failure"),
        ]
        assert events[1]["session_id"] == session["id"]
        assert events[2]["details"] == {"reason": "malformed", "token_given": False}

    async def test_holder_routes_audit_their_check_too(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        session = await create_session(client)
        read = await client.get("/api/v1/session", headers=holder(session))
        assert read.status_code == 200
        refused = await client.get("/api/v1/session", headers={"X-Session-ID": "nope"})
        assert refused.status_code == 401
        events = await audit_events(app)
        assert [(e["type"], e["outcome"]) for e in events] == [
            ("session.created", "success"),
            ("session.validated", "success"),
            ("session.validation_failed", "failure"),
        ]


class TestDatabaseRestart:
    async def test_validate_recovers_when_every_pooled_connection_died(
        self, client: httpx.AsyncClient, app: Running, backend: str
    ) -> None:
        if backend != "postgresql":
            pytest.skip("an embedded SQLite database cannot restart under the app")
        session = await create_session(client)
        # Fill the pool with several connections, then kill them all server-side.
        await asyncio.gather(*(validate(client, session["token"]) for _ in range(8)))
        database = app.resources.engine.url.database
        async with app.resources.engine.connect() as conn:
            await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = :db AND pid <> pg_backend_pid()"
                ),
                {"db": database},
            )
        # Every request after the server dropped its connections still succeeds.
        for _ in range(3):
            assert (await validate(client, session["token"]))["valid"] is True


class TestAbsoluteLifetime:
    """SESSION_MAX_AGE ends every session however active, completed ones too."""

    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"session_max_age": timedelta(days=3), "last_seen_throttle": timedelta(0)}

    async def test_an_active_session_that_never_idles_ends(
        self, client: httpx.AsyncClient, clock: FakeClock
    ) -> None:
        session = await create_session(client)
        for _ in range(71):  # a check every hour, never idle
            clock.advance(timedelta(hours=1))
            assert (await validate(client, session["token"]))["valid"] is True
        clock.advance(timedelta(hours=1))
        assert await validate(client, session["token"]) == {
            "valid": False,
            "reason": "expired",
            "action": "reset",
        }
        held = await client.get("/api/v1/session", headers=holder(session))
        assert assert_problem(held, 401, "session_invalid")["reason"] == "expired"
