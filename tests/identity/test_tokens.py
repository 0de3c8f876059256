"""A secret token apart from the public id: kept as a digest, rotated on details, never planted."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import timedelta

import httpx
import pytest

from session_service.cleanup.runner import job_context
from tests.conftest import FakeClock
from tests.helpers import Running, assert_problem, create_session, holder, rows, validate

VALIDATE = "/api/v1/session/validate"
DETAILS = "/api/v1/session/details"
RESET = "/api/v1/session/reset"
SERVICE_KEY = "s" * 40
ALICE = {"name": "Alice", "email": "alice@example.org", "consent_user_data": True}


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TestTwoValues:
    async def test_the_token_is_not_the_id_and_only_its_digest_is_stored(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        session = await create_session(client)
        assert uuid.UUID(session["token"]).version == 4
        assert session["token"] != session["id"]
        [row] = await rows(app, "SELECT * FROM sessions")
        assert uuid.UUID(str(row["id"])) == uuid.UUID(session["id"])
        assert row["token_digest"] == digest(session["token"])
        assert session["token"] not in {str(value) for value in row.values()}

    async def test_the_public_id_grants_nothing(self, client: httpx.AsyncClient) -> None:
        session = await create_session(client)
        assert await validate(client, session["id"]) == {
            "valid": False,
            "reason": "not_found",
            "action": "reset",
        }
        answer = await client.get("/api/v1/session", headers=holder(session["id"]))
        assert assert_problem(answer, 401, "session_invalid")["reason"] == "not_found"

    async def test_the_token_is_answered_only_where_it_is_issued(
        self, client: httpx.AsyncClient
    ) -> None:
        session = await create_session(client)
        token = session["token"]
        checked = await client.post(VALIDATE, headers=holder(session))
        read = await client.get("/api/v1/session", headers=holder(session))
        assert checked.json()["session"]["id"] == session["id"]
        for answer in (checked, read):
            assert token not in answer.text
            assert token not in str(answer.headers)


class TestRotation:
    async def test_details_issue_a_new_token_and_end_the_old_one(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        session = await create_session(client)
        answer = await client.put(DETAILS, json=ALICE, headers=holder(session))
        assert answer.status_code == 200
        new = answer.json()["token"]
        assert new != session["token"]
        assert answer.json()["id"] == session["id"]  # the same session
        assert await validate(client, session["token"]) == {
            "valid": False,
            "reason": "rotated",
            "action": "reset",
        }
        stale = await client.get("/api/v1/session", headers=holder(session))
        assert assert_problem(stale, 401, "session_invalid")["reason"] == "rotated"
        fresh = await client.get("/api/v1/session", headers=holder(new))
        assert fresh.json()["email"] == "alice@example.org"
        [tomb] = await rows(app, "SELECT reason FROM session_tombstones")
        assert tomb["reason"] == "rotated"

    async def test_a_resubmission_while_pending_rotates_again(
        self, client: httpx.AsyncClient
    ) -> None:
        session = await create_session(client)
        first = (await client.put(DETAILS, json=ALICE, headers=holder(session))).json()["token"]
        again = await client.put(DETAILS, json={**ALICE, "name": "Al"}, headers=holder(first))
        assert again.status_code == 200
        assert (await validate(client, first))["reason"] == "rotated"
        assert (await validate(client, again.json()["token"]))["valid"] is True

    @pytest.mark.parametrize("settings_overrides", [{"service_api_keys": [SERVICE_KEY]}])
    async def test_completion_does_not_rotate(self, client: httpx.AsyncClient) -> None:
        session = await create_session(client)
        token = (await client.put(DETAILS, json=ALICE, headers=holder(session))).json()["token"]
        completed = await client.post(
            f"/api/v1/sessions/{session['id']}/complete",
            headers={"Authorization": f"Bearer {SERVICE_KEY}"},
        )
        assert completed.status_code == 200
        assert "token" not in completed.json()
        assert (await validate(client, token))["session"]["status"] == "completed"

    async def test_a_reset_ends_the_old_token_and_a_replaced_one_cannot_reset_again(
        self, client: httpx.AsyncClient
    ) -> None:
        session = await create_session(client)
        reset = await client.post(RESET, json={"reason": "tampered"}, headers=holder(session))
        assert reset.status_code == 201
        new = reset.json()["session"]
        assert new["token"] != session["token"]
        assert new["id"] != session["id"]
        assert (await validate(client, session["token"]))["reason"] == "reset"
        again = await client.post(RESET, json={"reason": "reset"}, headers=holder(session))
        assert_problem(again, 409, "token_replaced")
        # Without a token (the browser's fallback) a reset always starts a session.
        fresh = await client.post(RESET, json={"reason": "reset"})
        assert fresh.status_code == 201


class TestFixation:
    async def test_a_proposed_token_is_refused_by_default(self, client: httpx.AsyncClient) -> None:
        answer = await client.post("/api/v1/sessions", json={"id": str(uuid.uuid4())})
        assert_problem(answer, 422, "client_tokens_disabled")

    @pytest.mark.parametrize("settings_overrides", [{"allow_client_tokens": True}])
    async def test_a_planted_token_stops_working_once_the_victim_gives_details(
        self, client: httpx.AsyncClient
    ) -> None:
        planted = str(uuid.uuid4())
        attacker = await client.post("/api/v1/sessions", json={"id": planted})
        assert attacker.status_code == 201
        assert attacker.json()["token"] == planted
        # The victim's browser holds the planted token and gives details with it.
        victim = await client.put(DETAILS, json=ALICE, headers=holder(planted))
        assert victim.status_code == 200
        assert victim.json()["token"] != planted
        stolen = await client.get("/api/v1/session", headers=holder(planted))
        body = assert_problem(stolen, 401, "session_invalid")
        assert body["reason"] == "rotated"
        assert "alice" not in stolen.text.lower()
        # Nor can the planted token start a session again.
        replant = await client.post("/api/v1/sessions", json={"id": planted})
        assert_problem(replant, 409, "session_exists")


class TestNoResurrection:
    @pytest.mark.parametrize("settings_overrides", [{"allow_client_tokens": True}])
    async def test_an_erased_sessions_token_never_works_or_starts_one_again(
        self, client: httpx.AsyncClient
    ) -> None:
        session = await create_session(client)
        assert (await client.delete("/api/v1/session", headers=holder(session))).status_code == 204
        assert (await validate(client, session["token"]))["reason"] == "not_found"
        again = await client.post("/api/v1/sessions", json={"id": session["token"]})
        assert_problem(again, 409, "session_exists")

    @pytest.mark.parametrize("settings_overrides", [{"allow_client_tokens": True}])
    async def test_an_expired_and_cleaned_up_sessions_token_never_starts_one_again(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        session = await create_session(client)
        clock.advance(timedelta(days=60))
        await app.resources.cleanup.run_once(dry_run=False, ctx=job_context())
        assert await rows(app, "SELECT id FROM sessions") == []
        again = await client.post("/api/v1/sessions", json={"id": session["token"]})
        assert_problem(again, 409, "session_exists")


class TestConcurrency:
    async def test_racing_details_and_resets_leave_exactly_one_live_token(
        self, client: httpx.AsyncClient, backend: str
    ) -> None:
        if backend != "postgresql":
            pytest.skip("concurrent transactions on one row are PostgreSQL's")
        session = await create_session(client)
        details = await asyncio.gather(
            *(
                client.put(DETAILS, json={**ALICE, "name": f"Tab {n}"}, headers=holder(session))
                for n in range(20)
            )
        )
        statuses = sorted(answer.status_code for answer in details)
        assert statuses.count(200) >= 1, statuses
        assert set(statuses) <= {200, 401, 409}, statuses
        for answer in details:
            if answer.status_code == 409:
                assert answer.json()["code"] == "token_replaced"
            if answer.status_code == 401:
                assert answer.json()["reason"] == "rotated"
        issued = [session["token"]] + [a.json()["token"] for a in details if a.status_code == 200]
        live = [t for t in issued if (await validate(client, t))["valid"]]
        assert len(live) == 1

        resets = await asyncio.gather(
            *(
                client.post(RESET, json={"reason": "tampered"}, headers=holder(live[0]))
                for _ in range(20)
            )
        )
        codes = sorted(answer.status_code for answer in resets)
        assert codes.count(201) == 1, codes
        assert set(codes) <= {201, 409}, codes
        new_tokens = [a.json()["session"]["token"] for a in resets if a.status_code == 201]
        still_live = [t for t in issued + new_tokens if (await validate(client, t))["valid"]]
        assert still_live == new_tokens
