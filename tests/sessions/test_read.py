"""GET /api/v1/session: the holder's own session, 401 session_invalid otherwise."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx

from tests.conftest import FakeClock
from tests.helpers import Running, assert_problem, audit_events, create_session, holder

URL = "/api/v1/session"


class TestReadSession:
    async def test_holder_reads_their_session(self, client: httpx.AsyncClient) -> None:
        session = await create_session(client)
        response = await client.get(URL, headers=holder(session))
        assert response.status_code == 200
        body = response.json()
        assert body["id"] == session["id"]
        assert "token" not in body  # shown only in the answer that issues it
        assert body["name"] is None
        assert body["email"] is None

    async def test_the_public_id_is_no_credential(self, client: httpx.AsyncClient) -> None:
        session = await create_session(client)
        response = await client.get(URL, headers={"X-Session-ID": session["id"]})
        assert assert_problem(response, 401, "session_invalid")["reason"] == "not_found"

    async def test_missing_header_is_401_malformed(self, client: httpx.AsyncClient) -> None:
        body = assert_problem(await client.get(URL), 401, "session_invalid")
        assert body["reason"] == "malformed"
        assert body["action"] == "reset"

    async def test_unknown_and_expired_are_401_with_reason(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        response = await client.get(URL, headers={"X-Session-ID": str(uuid.uuid4())})
        assert assert_problem(response, 401, "session_invalid")["reason"] == "not_found"
        session = await create_session(client)
        clock.advance(timedelta(days=1, seconds=1))
        response = await client.get(URL, headers=holder(session))
        assert assert_problem(response, 401, "session_invalid")["reason"] == "expired"
        # Rejected attempts are audited even though the request itself failed.
        failures = [e for e in await audit_events(app) if e["type"] == "session.validation_failed"]
        assert [e["details"]["reason"] for e in failures] == ["not_found", "expired"]
        assert [e["session_id"] for e in failures] == [None, session["id"]]
        assert session["token"] not in str(failures)

    async def test_token_in_query_string_is_ignored(self, client: httpx.AsyncClient) -> None:
        session = await create_session(client)
        for name in ("session_id", "token"):
            response = await client.get(URL, params={name: session["token"]})
            assert assert_problem(response, 401, "session_invalid")["reason"] == "malformed"
