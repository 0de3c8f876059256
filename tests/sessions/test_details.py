"""Details and consent, and completion by a service."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest

from tests.conftest import T0, FakeClock
from tests.helpers import Running, assert_problem, audit_events, create_session, session_row

SERVICE_KEY = "svc-" + "s" * 40
NAME, EMAIL = "Ada Lovelace", "ada@example.org"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"service_api_keys": [SERVICE_KEY]}


async def submit(client: httpx.AsyncClient, sid: str, **body: object) -> httpx.Response:
    payload = {"name": NAME, "email": EMAIL, "consent_user_data": True, **body}
    return await client.put("/api/v1/session/details", headers={"X-Session-ID": sid}, json=payload)


async def complete(client: httpx.AsyncClient, sid: str) -> httpx.Response:
    return await client.post(
        f"/api/v1/sessions/{sid}/complete", headers={"Authorization": f"Bearer {SERVICE_KEY}"}
    )


class TestDetails:
    async def test_details_with_consent_make_the_session_pending(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        sid = (await create_session(client))["id"]
        response = await submit(client, sid, name="  Ada Lovelace  ")
        assert response.status_code == 200
        body = response.json()
        assert (body["status"], body["name"], body["email"]) == (
            "pending_verification",
            NAME,
            EMAIL,
        )
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

    async def test_resubmitting_while_pending_updates(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        sid = (await create_session(client))["id"]
        await submit(client, sid)
        response = await submit(client, sid, email="ada@lovelace.example")
        assert response.json()["email"] == "ada@lovelace.example"
        assert (await audit_events(app))[-1]["details"]["changed"] == ["email"]

    @pytest.mark.parametrize(
        "override",
        [
            {"consent_user_data": False},
            {"consent_user_data": None},
            {"consent_user_data": "true"},
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
        ],
    )
    async def test_bad_details_are_422_and_store_nothing(
        self, client: httpx.AsyncClient, app: Running, override: dict[str, object]
    ) -> None:
        sid = (await create_session(client))["id"]
        response = await submit(client, sid, **override)
        assert_problem(response, 422, "validation_error")
        row = await session_row(app, sid)
        assert row is not None
        assert (row["status"], row["name"], row["email"]) == ("active", None, None)

    async def test_consent_missing_is_422(self, client: httpx.AsyncClient) -> None:
        sid = (await create_session(client))["id"]
        response = await client.put(
            "/api/v1/session/details",
            headers={"X-Session-ID": sid},
            json={"name": NAME, "email": EMAIL},
        )
        body = assert_problem(response, 422, "validation_error")
        assert ["body", "consent_user_data"] in [error["loc"] for error in body["errors"]]

    async def test_details_need_a_valid_session(self, client: httpx.AsyncClient) -> None:
        response = await submit(client, str(uuid.uuid4()))
        assert_problem(response, 401, "session_invalid")


class TestCompletion:
    async def test_service_completes_a_pending_session(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        sid = (await create_session(client))["id"]
        await submit(client, sid)
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
        validate = await client.post("/api/v1/session/validate", headers={"X-Session-ID": sid})
        assert validate.json()["valid"] is True
        assert_problem(await submit(client, sid), 409, "session_completed")
        clock.advance(timedelta(days=1))
        ended = await client.post("/api/v1/session/validate", headers={"X-Session-ID": sid})
        assert ended.json() == {"valid": False, "reason": "expired", "action": "reset"}

    async def test_other_statuses_are_409_naming_the_status(
        self, client: httpx.AsyncClient, clock: FakeClock
    ) -> None:
        active = (await create_session(client))["id"]
        body = assert_problem(await complete(client, active), 409, "session_active")
        assert body["session_status"] == "active"
        done = (await create_session(client))["id"]
        await submit(client, done)
        await complete(client, done)
        assert_problem(await complete(client, done), 409, "session_completed")
        old = (await create_session(client))["id"]
        await client.post(
            "/api/v1/session/reset", headers={"X-Session-ID": old}, json={"reason": "tampered"}
        )
        assert_problem(await complete(client, old), 409, "session_reset")
        stale = (await create_session(client))["id"]
        await submit(client, stale)
        clock.advance(timedelta(days=8))
        assert_problem(await complete(client, stale), 409, "session_expired")

    async def test_unknown_session_is_404(self, client: httpx.AsyncClient) -> None:
        assert_problem(await complete(client, str(uuid.uuid4())), 404, "session_not_found")

    async def test_service_lookup_shows_details(self, client: httpx.AsyncClient) -> None:
        sid = (await create_session(client))["id"]
        await submit(client, sid)
        response = await client.get(
            f"/api/v1/sessions/{sid}", headers={"Authorization": f"Bearer {SERVICE_KEY}"}
        )
        assert response.json()["email"] == EMAIL
