"""Answers that carry a session's token, id, details or files are never kept by a cache."""

from __future__ import annotations

import httpx
import pytest

from tests.files.helpers import request_slot
from tests.helpers import holder

SERVICE_KEY = "svc-" + "d" * 40


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"service_api_keys": [SERVICE_KEY]}


def _assert_uncacheable(response: httpx.Response) -> None:
    assert response.headers["cache-control"] == "no-store", response.request.url
    assert "X-Session-ID" in response.headers["vary"], response.request.url


class TestNoStore:
    async def test_every_session_answer_is_uncacheable(self, client: httpx.AsyncClient) -> None:
        created = await client.post("/api/v1/sessions")
        _assert_uncacheable(created)
        sid = created.json()["id"]
        headers = holder(created.json())
        service = {"Authorization": f"Bearer {SERVICE_KEY}"}
        details = {"name": "Ada", "email": "ada@example.org", "consent_user_data": True}
        slot = await request_slot(client, created.json()["token"])
        file_id = slot.json()["file"]["id"]
        answers = [
            slot,
            await client.post("/api/v1/session/validate", headers=headers),
            await client.get("/api/v1/session", headers=headers),
        ]
        # The details answer carries the new token, which the holder sends from then on.
        given = await client.put("/api/v1/session/details", json=details, headers=headers)
        assert given.status_code == 200, given.text
        headers = holder(given.json())
        answers += [
            given,
            await client.get("/api/v1/session/files", headers=headers),
            await client.post(f"/api/v1/session/files/{file_id}/complete", headers=headers),
            await client.get("/api/v1/session/export", headers=headers),
            await client.get(f"/api/v1/sessions/{sid}", headers=service),
            await client.get("/api/v1/session", headers={"X-Session-ID": "nope"}),
            await client.post(
                "/api/v1/session/reset", json={"reason": "tampered"}, headers=headers
            ),
        ]
        for response in answers:
            assert response.status_code < 500, response.text
            _assert_uncacheable(response)

    async def test_other_routes_keep_their_own_policy(self, client: httpx.AsyncClient) -> None:
        assert "cache-control" not in (await client.get("/healthz")).headers
        assert (await client.get("/")).headers["cache-control"] == "no-cache"
