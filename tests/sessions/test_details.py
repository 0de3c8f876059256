"""Details and consent, and completion by a service."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest

from session_service.core.ids import token_digest
from tests.conftest import T0, FakeClock
from tests.helpers import (
    Running,
    assert_problem,
    audit_events,
    create_session,
    holder,
    session_row,
)

SERVICE_KEY = "svc-" + "s" * 40
NAME, EMAIL = "Ada Lovelace", "ada@example.org"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"service_api_keys": [SERVICE_KEY]}


async def submit(client: httpx.AsyncClient, token: str, **body: object) -> httpx.Response:
    """PUT details as the holder of `token`; a 200 answer carries the session's new token."""
    payload = {"name": NAME, "email": EMAIL, "consent_user_data": True, **body}
    return await client.put("/api/v1/session/details", headers=holder(token), json=payload)


async def give_details(client: httpx.AsyncClient, token: str) -> str:
    """Submit the usual details and return the new token that replaced `token`."""
    response = await submit(client, token)
    assert response.status_code == 200, response.text
    new_token: str = response.json()["token"]
    return new_token


async def complete(client: httpx.AsyncClient, sid: str) -> httpx.Response:
    return await client.post(
        f"/api/v1/sessions/{sid}/complete", headers={"Authorization": f"Bearer {SERVICE_KEY}"}
    )


class TestDetails:
    async def test_details_with_consent_make_the_session_pending(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        session = await create_session(client)
        sid = session["id"]
        response = await submit(client, session["token"], name="  Ada Lovelace  ")
        assert response.status_code == 200
        body = response.json()
        assert (body["status"], body["name"], body["email"]) == (
            "pending_verification",
            NAME,
            EMAIL,
        )
        assert body["id"] == sid
        assert body["consent_user_data"] is True
        assert body["consent_given_at"] == clock.now.isoformat().replace("+00:00", "Z")
        row = await session_row(app, sid)
        assert row is not None
        assert row["expires_at"] == clock.now + timedelta(days=7)
        event = (await audit_events(app))[-1]
        assert event["type"] == "session.details_submitted"
        assert event["details"] == {
            "changed": ["name", "email"],
            "consent_user_data": True,
            "status": "pending_verification",
        }
        assert NAME not in str(event)
        assert EMAIL not in str(event)
        assert body["token"] not in str(event)

    async def test_details_replace_the_token(self, client: httpx.AsyncClient, app: Running) -> None:
        session = await create_session(client)
        response = await submit(client, session["token"])
        assert response.status_code == 200
        token = response.json()["token"]
        # Details are kept under a token issued here: the one that was sent stops working.
        assert uuid.UUID(token).version == 4
        assert token not in (session["token"], session["id"])
        row = await session_row(app, session["id"])
        assert row is not None
        assert row["token_digest"] == token_digest(uuid.UUID(token))
        stale = await client.post("/api/v1/session/validate", headers=holder(session))
        assert stale.json() == {"valid": False, "reason": "rotated", "action": "reset"}
        held = await client.get("/api/v1/session", headers=holder(session))
        assert assert_problem(held, 401, "session_invalid")["reason"] == "rotated"
        assert_problem(await submit(client, session["token"]), 401, "session_invalid")
        fresh = await client.post("/api/v1/session/validate", headers=holder(token))
        assert fresh.json()["valid"] is True
        assert fresh.json()["session"]["id"] == session["id"]

    async def test_resubmitting_while_pending_updates(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        token = await give_details(client, (await create_session(client))["token"])
        response = await submit(client, token, email="ada@lovelace.example")
        assert response.json()["email"] == "ada@lovelace.example"
        assert response.json()["token"] != token  # every submission issues a new token
        assert (await audit_events(app))[-1]["details"]["changed"] == ["email"]

    @pytest.mark.parametrize(
        "override",
        [
            {"consent_user_data": False},
            {"consent_user_data": None},
            {"consent_user_data": "true"},
            {"consent_user_data": 1},
            {"consent_user_data": 1.0},
            {"email": "not-an-email"},
            {"email": "a@b"},
            {"email": "x" * 250 + "@example.org"},
            {"email": ""},
            {"name": ""},
            {"name": "   "},
            {"name": "x" * 101},
            {"name": "x" * 10_000},
            {"name": "Ada\x00Lovelace"},
            {"name": "Ada\u202eLovelace"},
            {"name": "Ada\nLovelace"},
            {"extra": 1},
            # Not a string: refused by type, before any check that expects one.
            {"name": 5},
            {"name": None},
            {"name": {}},
            {"name": []},
            {"name": True},
            {"email": 5},
            {"email": None},
        ],
    )
    async def test_bad_details_are_422_and_store_nothing(
        self, client: httpx.AsyncClient, app: Running, override: dict[str, object]
    ) -> None:
        session = await create_session(client)
        response = await submit(client, session["token"], **override)
        body = assert_problem(response, 422, "validation_error")
        (field,) = override
        assert ["body", field] in [error["loc"] for error in body["errors"]]
        row = await session_row(app, session["id"])
        assert row is not None
        assert (row["status"], row["name"], row["email"]) == ("active", None, None)
        # Nothing stored, so the token was not replaced either.
        assert row["token_digest"] == token_digest(uuid.UUID(session["token"]))

    async def test_consent_missing_is_422(self, client: httpx.AsyncClient) -> None:
        session = await create_session(client)
        response = await client.put(
            "/api/v1/session/details",
            headers=holder(session),
            json={"name": NAME, "email": EMAIL},
        )
        body = assert_problem(response, 422, "validation_error")
        assert ["body", "consent_user_data"] in [error["loc"] for error in body["errors"]]

    async def test_details_need_a_valid_session(self, client: httpx.AsyncClient) -> None:
        response = await submit(client, str(uuid.uuid4()))
        assert_problem(response, 401, "session_invalid")
        # The public id is no credential.
        session = await create_session(client)
        by_id = await submit(client, session["id"])
        assert assert_problem(by_id, 401, "session_invalid")["reason"] == "not_found"


class TestCompletion:
    async def test_service_completes_a_pending_session(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        session = await create_session(client)
        sid = session["id"]
        token = await give_details(client, session["token"])
        response = await complete(client, sid)
        assert response.status_code == 200
        body = response.json()
        assert (body["status"], body["email"]) == ("completed", EMAIL)
        assert body["completed_at"] == clock.now.isoformat().replace("+00:00", "Z")
        # No idle expiry any more: it ends SESSION_MAX_AGE (30 days) after its creation.
        assert body["expires_at"] == (T0 + timedelta(days=30)).isoformat().replace("+00:00", "Z")
        assert (await audit_events(app))[-1]["type"] == "session.completed"
        # A completed session stays usable by its holder however idle, until that end.
        clock.advance(timedelta(days=29))
        # Completion does not replace the token.
        validate = await client.post("/api/v1/session/validate", headers=holder(token))
        assert validate.json()["valid"] is True
        assert_problem(await submit(client, token), 409, "session_completed")
        clock.advance(timedelta(days=1))
        ended = await client.post("/api/v1/session/validate", headers=holder(token))
        assert ended.json() == {"valid": False, "reason": "expired", "action": "reset"}

    async def test_other_statuses_are_409_naming_the_status(
        self, client: httpx.AsyncClient, clock: FakeClock
    ) -> None:
        active = (await create_session(client))["id"]
        body = assert_problem(await complete(client, active), 409, "session_active")
        assert body["session_status"] == "active"
        done = await create_session(client)
        await give_details(client, done["token"])
        assert (await complete(client, done["id"])).status_code == 200
        assert_problem(await complete(client, done["id"]), 409, "session_completed")
        old = await create_session(client)
        reset = await client.post(
            "/api/v1/session/reset", headers=holder(old), json={"reason": "tampered"}
        )
        assert reset.status_code == 201
        assert_problem(await complete(client, old["id"]), 409, "session_reset")
        stale = await create_session(client)
        await give_details(client, stale["token"])
        clock.advance(timedelta(days=8))
        assert_problem(await complete(client, stale["id"]), 409, "session_expired")

    async def test_unknown_session_is_404(self, client: httpx.AsyncClient) -> None:
        assert_problem(await complete(client, str(uuid.uuid4())), 404, "session_not_found")

    async def test_service_lookup_shows_details(self, client: httpx.AsyncClient) -> None:
        session = await create_session(client)
        await give_details(client, session["token"])
        response = await client.get(
            f"/api/v1/sessions/{session['id']}", headers={"Authorization": f"Bearer {SERVICE_KEY}"}
        )
        assert response.json()["email"] == EMAIL
        assert "token" not in response.json()
