"""GET /api/v1/admin/audit-events: filters, newest first, keyset cursors, admin key."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from itsdangerous import URLSafeSerializer

from tests.conftest import FakeClock
from tests.helpers import Running, assert_problem, create_session, holder

ADMIN_KEY = "adm-" + "z" * 40
SERVICE_KEY = "svc-" + "y" * 40
URL = "/api/v1/admin/audit-events"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"admin_api_keys": [ADMIN_KEY], "service_api_keys": [SERVICE_KEY]}


async def _page(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get(URL, headers=ADMIN, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


class TestQuery:
    async def test_newest_first_with_filters(
        self, client: httpx.AsyncClient, clock: FakeClock
    ) -> None:
        first = await create_session(client)
        clock.advance(timedelta(hours=1))
        second = await create_session(client)
        await client.post(
            "/api/v1/session/reset",
            headers=holder(second),
            json={"reason": "tampered"},
        )
        events = (await _page(client))["events"]
        ids = [event["id"] for event in events]
        assert ids == sorted(ids, reverse=True)

        by_session = (await _page(client, session_id=first["id"]))["events"]
        assert {event["session_id"] for event in by_session} == {first["id"]}
        by_type = (await _page(client, type="session.superseded"))["events"]
        assert [event["session_id"] for event in by_type] == [second["id"]]
        since = (clock.now - timedelta(minutes=30)).isoformat()
        recent = (await _page(client, since=since, type="session.created"))["events"]
        assert [event["session_id"] for event in recent] == [second["id"]]
        until = (clock.now - timedelta(minutes=30)).isoformat()
        older = (await _page(client, until=until))["events"]
        assert [event["session_id"] for event in older] == [first["id"]]

    async def test_every_event_once_across_pages_while_new_ones_arrive(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        for _ in range(23):
            await create_session(client)
        expected = [
            event["id"]
            for event in (await _page(client, limit=200, type="session.created"))["events"]
        ]
        seen: list[int] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 5, "type": "session.created"}
            if cursor:
                params["cursor"] = cursor
            body = await _page(client, **params)
            seen += [event["id"] for event in body["events"]]
            await create_session(client)  # a new event lands between pages
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert seen[: len(expected)] == expected
        assert len(seen) == len(set(seen))

    async def test_limit_is_capped(self, client: httpx.AsyncClient) -> None:
        response = await client.get(URL, headers=ADMIN, params={"limit": 201})
        assert_problem(response, 422, "validation_error")

    async def test_the_query_itself_is_audited(self, client: httpx.AsyncClient) -> None:
        await _page(client, type="session.created")
        latest = (await _page(client, limit=1))["events"][0]
        assert latest["type"] == "admin.audit_queried"
        assert latest["details"]["type"] == "session.created"


class TestCursors:
    @pytest.mark.parametrize("cursor", ["garbage", "e30.abc", "x" * 300])
    async def test_malformed_or_forged(self, client: httpx.AsyncClient, cursor: str) -> None:
        response = await client.get(URL, headers=ADMIN, params={"cursor": cursor})
        assert_problem(response, 422, "invalid_cursor")

    async def test_signed_with_another_key(self, client: httpx.AsyncClient) -> None:
        forged = URLSafeSerializer("not-our-key", salt="audit-cursor").dumps(
            {"before": 10**9, "filter": "0" * 16}
        )
        response = await client.get(URL, headers=ADMIN, params={"cursor": forged})
        assert_problem(response, 422, "invalid_cursor")

    async def test_from_another_filter(self, client: httpx.AsyncClient) -> None:
        for _ in range(3):
            await create_session(client)
        cursor = (await _page(client, limit=1, type="session.created"))["next_cursor"]
        assert cursor
        response = await client.get(
            URL, headers=ADMIN, params={"cursor": cursor, "type": "session.reset", "limit": 1}
        )
        assert_problem(response, 422, "invalid_cursor")

    async def test_naive_times_are_refused(self, client: httpx.AsyncClient) -> None:
        response = await client.get(URL, headers=ADMIN, params={"since": "2026-01-01T00:00:00"})
        assert_problem(response, 422, "validation_error")


class TestAdminKey:
    async def test_service_key_is_403_and_none_is_401(self, client: httpx.AsyncClient) -> None:
        service = await client.get(URL, headers={"Authorization": f"Bearer {SERVICE_KEY}"})
        assert_problem(service, 403, "forbidden")
        assert_problem(await client.get(URL), 401, "unauthorized")
