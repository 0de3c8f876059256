"""POST /api/v1/sessions: server ids and tokens, proposed tokens, bad input, id collisions."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import httpx
import pytest

from session_service.app import create_app
from session_service.cleanup.runner import job_context
from session_service.core.ids import token_digest
from session_service.core.settings import Settings
from tests.conftest import T0, FakeClock
from tests.helpers import (
    Running,
    assert_problem,
    audit_events,
    count_sessions,
    create_session,
    holder,
    rows,
    running,
    session_row,
)

URL = "/api/v1/sessions"


class TestCreateSession:
    async def test_server_generates_a_uuid4_and_answers_201_with_location(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        response = await client.post(URL)
        assert response.status_code == 201
        assert response.headers["location"] == "/api/v1/session"
        body = response.json()
        assert uuid.UUID(body["id"]).version == 4
        assert uuid.UUID(body["token"]).version == 4
        assert body["token"] != body["id"]
        assert body["status"] == "active"
        assert body["previous_session_id"] is None
        assert body["expires_at"] == "2026-01-16T09:30:00Z"  # T0 + 24 h idle TTL
        row = await session_row(app, body["id"])
        assert row is not None
        assert row["client_ip"] == "127.0.0.1"
        assert row["created_at"] == T0
        # The database keeps the token's digest, never the token itself.
        assert row["token_digest"] == token_digest(uuid.UUID(body["token"]))
        assert body["token"] not in str(row)

    async def test_creation_is_audited_with_request_facts(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        response = await client.post(
            URL, headers={"User-Agent": "pytest-browser", "X-Request-ID": "req-create-1"}
        )
        [event] = await audit_events(app)
        assert event["type"] == "session.created"
        assert event["session_id"] == response.json()["id"]
        assert event["request_id"] == "req-create-1"
        # By default (AUDIT_CLIENT_DETAIL=network) the event keeps the network, no user agent.
        assert event["user_agent"] is None
        assert event["client_ip"] == "127.0.0.0/24"
        assert event["outcome"] == "success"
        assert event["details"] == {"token_source": "server"}
        assert response.json()["token"] not in str(event)

    async def test_each_session_gets_a_distinct_id_and_token(
        self, client: httpx.AsyncClient
    ) -> None:
        sessions = [await create_session(client) for _ in range(5)]
        assert len({s["id"] for s in sessions} | {s["token"] for s in sessions}) == 10

    async def test_empty_json_object_is_a_plain_create(self, client: httpx.AsyncClient) -> None:
        response = await client.post(URL, json={})
        assert response.status_code == 201


class TestProposedToken:
    """Older frontends may propose their own token, where the operator allows it."""

    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"allow_client_tokens": True}

    async def test_a_free_uuid4_becomes_the_token(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        proposed = str(uuid.uuid4())
        response = await client.post(URL, json={"id": proposed})
        assert response.status_code == 201
        answer = response.json()
        assert answer["token"] == proposed
        # The public id is the server's own, never the proposed secret.
        assert answer["id"] != proposed
        assert uuid.UUID(answer["id"]).version == 4
        [event] = await audit_events(app)
        assert event["details"] == {"token_source": "client"}
        assert event["session_id"] == answer["id"]
        assert proposed not in str(event)
        validate = await client.post("/api/v1/session/validate", headers=holder(proposed))
        assert validate.json()["session"]["id"] == answer["id"]

    async def test_an_existing_token_is_409_and_changes_nothing(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        existing = await create_session(client)
        response = await client.post(URL, json={"id": existing["token"]})
        assert_problem(response, 409, "session_exists")
        assert await count_sessions(app) == 1
        assert len(await audit_events(app)) == 1

    async def test_upper_case_is_accepted_and_normalised(self, client: httpx.AsyncClient) -> None:
        proposed = str(uuid.uuid4())
        response = await client.post(URL, json={"id": proposed.upper()})
        assert response.status_code == 201
        assert response.json()["token"] == proposed
        # The same token in another case is the same session's.
        again = await client.post(URL, json={"id": proposed})
        assert_problem(again, 409, "session_exists")

    async def test_rejected_tokens_are_422_and_write_nothing(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        v4 = str(uuid.uuid4())
        bad_ids = [
            str(uuid.uuid1()),  # version 1
            str(uuid.UUID(int=0)),  # nil
            "not-a-uuid",
            "",
            f" {v4}",
            f"{v4} ",
            f"{{{v4}}}",
            v4.replace("-", ""),
            f"urn:uuid:{v4}",
            v4[:-1] + "g",
            "x" * 10_000,
            12345,
            None,
        ]
        for bad in bad_ids:
            response = await client.post(URL, json={"id": bad})
            if bad is None:  # an explicit null means "no proposal"
                assert response.status_code == 201
                continue
            body = assert_problem(response, 422, "validation_error")
            assert body["errors"][0]["loc"] == ["body", "id"]
            assert "input" not in body["errors"][0]
        assert await count_sessions(app) == 1


class TestBadBodies:
    async def test_unknown_fields_are_rejected(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        response = await client.post(URL, json={"id": str(uuid.uuid4()), "admin": True})
        body = assert_problem(response, 422, "validation_error")
        assert ["body", "admin"] in [err["loc"] for err in body["errors"]]
        assert await count_sessions(app) == 0

    async def test_non_json_body_is_400_or_422(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        response = await client.post(
            URL, content=b"{not json", headers={"content-type": "application/json"}
        )
        assert_problem(response, 400, "malformed_json")
        response = await client.post(URL, content=b"hello", headers={"content-type": "text/plain"})
        assert_problem(response, 422, "validation_error")
        assert await count_sessions(app) == 0

    async def test_json_that_is_not_an_object_is_422(self, client: httpx.AsyncClient) -> None:
        for payload in (b"[]", b'"abc"', b"42"):
            response = await client.post(
                URL, content=payload, headers={"content-type": "application/json"}
            )
            assert_problem(response, 422, "validation_error")

    async def test_huge_body_is_413_without_writing(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        huge = b'{"id": "' + b"a" * (2 * 1024 * 1024) + b'"}'
        response = await client.post(
            URL, content=huge, headers={"content-type": "application/json"}
        )
        body = assert_problem(response, 413, "payload_too_large")
        assert "65536" in body["detail"]
        assert await count_sessions(app) == 0

    async def test_huge_streamed_body_without_length_is_413(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(100):
                yield b"a" * 4096

        response = await client.post(
            URL, content=chunks(), headers={"content-type": "application/json"}
        )
        assert_problem(response, 413, "payload_too_large")
        assert await count_sessions(app) == 0


def _colliding(existing: uuid.UUID, collisions: int) -> Iterator[uuid.UUID]:
    for _ in range(collisions):
        yield existing
    while True:
        yield uuid.uuid4()


async def _post_with_ids(
    settings: Settings, clock: FakeClock, ids: Iterator[uuid.UUID]
) -> httpx.Response:
    """POST /sessions on an app whose id generator yields `ids`."""
    app = create_app(settings, clock=clock, new_id=lambda: next(ids))
    async with running(app) as started:
        transport = httpx.ASGITransport(app=started)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.post(URL)


class TestIdCollisions:
    async def test_three_collisions_are_retried(
        self, client: httpx.AsyncClient, settings: Settings, clock: FakeClock
    ) -> None:
        existing = uuid.UUID((await create_session(client))["id"])
        response = await _post_with_ids(settings, clock, _colliding(existing, 3))
        assert response.status_code == 201
        assert response.json()["id"] != str(existing)

    async def test_four_collisions_give_up_with_500_and_write_nothing(
        self, client: httpx.AsyncClient, app: Running, settings: Settings, clock: FakeClock
    ) -> None:
        existing = uuid.UUID((await create_session(client))["id"])
        response = await _post_with_ids(settings, clock, _colliding(existing, 4))
        assert_problem(response, 500, "session_id_exhausted")
        assert await count_sessions(app) == 1
        assert len(await audit_events(app)) == 1


class TestNoFixation:
    async def test_proposals_are_refused_by_default_and_write_nothing(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        response = await client.post(URL, json={"id": str(uuid.uuid4())})
        assert_problem(response, 422, "client_tokens_disabled")
        assert await count_sessions(app) == 0
        [event] = await audit_events(app)
        assert event["type"] == "request.rejected"
        assert event["details"]["code"] == "client_tokens_disabled"


class TestNoResurrection:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"allow_client_tokens": True}

    @pytest.mark.parametrize(
        "made_up",
        [
            "00000000-0000-4000-8000-000000000000",
            "12345678-1234-4fff-8fff-fffff2345678",
            "aaaaaaaa-1234-4123-8123-123456789abc",
        ],
    )
    async def test_made_up_values_are_refused(
        self, client: httpx.AsyncClient, app: Running, made_up: str
    ) -> None:
        assert_problem(await client.post(URL, json={"id": made_up}), 422, "weak_client_token")
        assert await count_sessions(app) == 0

    async def test_an_erased_token_never_starts_a_session_again(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        proposed = str(uuid.uuid4())
        assert (await client.post(URL, json={"id": proposed})).status_code == 201
        erased = await client.delete("/api/v1/session", headers=holder(proposed))
        assert erased.status_code == 204
        assert_problem(await client.post(URL, json={"id": proposed}), 409, "session_exists")
        validate = await client.post("/api/v1/session/validate", headers=holder(proposed))
        assert validate.json()["valid"] is False
        dump = await rows(app, "SELECT * FROM session_tombstones")
        assert [row["reason"] for row in dump] == ["ended"]
        assert proposed not in str(dump)  # a digest, not the value
        assert await count_sessions(app) == 0

    async def test_an_expired_token_never_starts_a_session_again(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        proposed = str(uuid.uuid4())
        created = await client.post(URL, json={"id": proposed})
        assert created.status_code == 201
        clock.advance(timedelta(days=2))
        report = await app.resources.cleanup.run_once(dry_run=False, ctx=job_context())
        assert report is not None
        assert report.expired_sessions.items == [created.json()["id"]]
        assert_problem(await client.post(URL, json={"id": proposed}), 409, "session_exists")
        assert await count_sessions(app) == 0

    async def test_a_rotated_token_never_starts_a_session_again(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        proposed = str(uuid.uuid4())
        assert (await client.post(URL, json={"id": proposed})).status_code == 201
        details = {"name": "Ada", "email": "ada@example.org", "consent_user_data": True}
        given = await client.put("/api/v1/session/details", json=details, headers=holder(proposed))
        assert given.status_code == 200
        assert given.json()["token"] != proposed
        assert_problem(await client.post(URL, json={"id": proposed}), 409, "session_exists")
        assert await count_sessions(app) == 1

    async def test_a_reset_token_never_starts_a_session_again(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        proposed = str(uuid.uuid4())
        assert (await client.post(URL, json={"id": proposed})).status_code == 201
        reset = await client.post(
            "/api/v1/session/reset", json={"reason": "tampered"}, headers=holder(proposed)
        )
        assert reset.status_code == 201
        assert_problem(await client.post(URL, json={"id": proposed}), 409, "session_exists")
        assert await count_sessions(app) == 2

    async def test_tombstones_go_with_the_audit_trail(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        proposed = str(uuid.uuid4())
        assert (await client.post(URL, json={"id": proposed})).status_code == 201
        await client.delete("/api/v1/session", headers=holder(proposed))
        assert len(await rows(app, "SELECT digest FROM session_tombstones")) == 1
        clock.advance(timedelta(days=366))  # past AUDIT_RETENTION (365 days)
        await app.resources.cleanup.run_once(dry_run=False, ctx=job_context())
        assert await rows(app, "SELECT digest FROM session_tombstones") == []
