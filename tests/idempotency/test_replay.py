"""A retry under the same `Idempotency-Key` gets the first answer and changes nothing; every
operation that takes the header, on both databases."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text

from session_service.core.settings import Settings
from tests.conftest import FakeClock, service_log_lines
from tests.helpers import Running, assert_problem, create_session, holder
from tests.idempotency.conftest import (
    HOLDER_TARGETS,
    TARGETS,
    Target,
    idempotency_rows,
    new_key,
)

REPLAYED = "idempotent-replayed"


def assert_replay_of(replay: httpx.Response, first: httpx.Response) -> None:
    """The same status, body and `Location`, marked as a replay (the first answer is not)."""
    assert replay.status_code == first.status_code, replay.text
    assert replay.content == first.content
    assert replay.headers.get("location") == first.headers.get("location")
    assert replay.headers["content-type"] == first.headers["content-type"]
    assert replay.headers[REPLAYED] == "true"
    assert REPLAYED not in first.headers


class TestReplay:
    async def test_a_retry_gets_the_first_answer_and_runs_nothing(
        self, client: httpx.AsyncClient, app: Running, target: Target
    ) -> None:
        key = new_key()
        first = await target.succeed(client, key)
        after_first = await target.traces(app)

        for _ in range(2):
            assert_replay_of(await target.send(client, key), first)

        assert await target.traces(app) == after_first
        [row] = await idempotency_rows(app)
        assert uuid.UUID(str(row["session_id"])) == target.owner(first)

    async def test_create_and_reset_replay_the_same_token_with_its_location(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        create_key, reset_key = new_key(), new_key()
        created = await client.post("/api/v1/sessions", headers={"Idempotency-Key": create_key})
        again = await client.post("/api/v1/sessions", headers={"Idempotency-Key": create_key})
        assert again.json()["token"] == created.json()["token"]
        assert again.headers["location"] == "/api/v1/session"

        old = created.json()
        headers = {**holder(old), "Idempotency-Key": reset_key}
        reset = await client.post(
            "/api/v1/session/reset", headers=headers, json={"reason": "reset"}
        )
        assert reset.status_code == 201, reset.text
        # The old token no longer opens anything, yet the retry that presents it is answered.
        retried = await client.post(
            "/api/v1/session/reset", headers=headers, json={"reason": "reset"}
        )
        assert_replay_of(retried, reset)
        assert retried.json()["session"]["token"] == reset.json()["session"]["token"]
        without_key = await client.post(
            "/api/v1/session/reset", headers=holder(old), json={"reason": "reset"}
        )
        assert_problem(without_key, 409, "token_replaced")

    async def test_without_a_key_nothing_changes(
        self, client: httpx.AsyncClient, app: Running, target: Target
    ) -> None:
        first = await target.send(client, None)
        assert first.status_code in (200, 201), first.text
        assert REPLAYED not in first.headers
        assert await idempotency_rows(app) == []

    async def test_a_replay_is_logged_and_counted_by_operation_only(
        self, client: httpx.AsyncClient, app: Running, json_log: io.StringIO
    ) -> None:
        session = await create_session(client)
        key = new_key()
        headers = {**holder(session), "Idempotency-Key": key}
        for _ in range(2):
            await client.post("/api/v1/session/conversations", headers=headers, json={})
        lines = [
            line for line in service_log_lines(json_log) if line["event"] == "idempotent_replay"
        ]
        assert [line["operation"] for line in lines] == ["conversations-create"]
        logged = json_log.getvalue()
        assert key not in logged
        assert session["token"] not in logged
        metrics = app.resources.metrics.render().decode()
        assert (
            'session_service_idempotent_replays_total{operation="conversations-create"} 1.0'
            in metrics
        )


class TestReuse:
    async def test_the_same_key_for_another_body_is_refused(
        self, client: httpx.AsyncClient, app: Running, target: Target
    ) -> None:
        key = new_key()
        first = await target.succeed(client, key)
        after_first = await target.traces(app)

        refused = await target.send(client, key, other=True)

        body = assert_problem(refused, 422, "idempotency_key_reused")
        assert "different request" in body["detail"]
        assert await target.traces(app) == after_first
        assert_replay_of(await target.send(client, key), first)  # the first still stands

    async def test_the_same_key_on_another_path_is_another_request(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        session = await create_session(client)
        key = new_key()
        conversations = []
        for _ in range(2):
            created = await client.post(
                "/api/v1/session/conversations", headers=holder(session), json={}
            )
            conversations.append(created.json()["id"])
        headers = {**holder(session), "Idempotency-Key": key}
        sent = await client.post(
            f"/api/v1/session/conversations/{conversations[0]}/messages",
            headers=headers,
            json={"content": "Hello"},
        )
        assert sent.status_code == 201
        elsewhere = await client.post(
            f"/api/v1/session/conversations/{conversations[1]}/messages",
            headers=headers,
            json={"content": "Hello"},
        )
        assert_problem(elsewhere, 422, "idempotency_key_reused")


class TestScope:
    @pytest.mark.parametrize("operation", HOLDER_TARGETS)
    async def test_another_token_or_none_is_another_scope(
        self, client: httpx.AsyncClient, app: Running, operation: str
    ) -> None:
        mine, theirs = await TARGETS[operation](client), await TARGETS[operation](client)
        key = new_key()
        first = await mine.succeed(client, key)
        assert_replay_of(await mine.send(client, key), first)

        # The same key and body under another session's token: runs, for that session.
        other = await theirs.send(client, key)
        assert other.status_code == first.status_code, other.text
        assert REPLAYED not in other.headers
        assert other.content != first.content
        # No token at all: another scope too (here the session check refuses it, or reset
        # starts a session of its own).
        anonymous = await mine.send(client, key, headers={})
        assert REPLAYED not in anonymous.headers
        assert anonymous.content != first.content

    async def test_create_is_scoped_by_the_key_alone_and_by_a_header_sent(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        key = new_key()
        first = await client.post("/api/v1/sessions", headers={"Idempotency-Key": key})
        assert_replay_of(
            await client.post("/api/v1/sessions", headers={"Idempotency-Key": key}), first
        )
        with_a_token = await client.post(
            "/api/v1/sessions", headers={**holder(first.json()), "Idempotency-Key": key}
        )
        assert with_a_token.status_code == 201
        assert REPLAYED not in with_a_token.headers
        assert with_a_token.json()["id"] != first.json()["id"]

    async def test_another_operation_is_another_scope(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        session = await create_session(client)
        key = new_key()
        headers = {**holder(session), "Idempotency-Key": key}
        conversation = await client.post("/api/v1/session/conversations", headers=headers, json={})
        assert conversation.status_code == 201
        slot = await client.post(
            "/api/v1/session/uploads",
            headers=headers,
            json={"name": "a.pdf", "content_type": "application/pdf", "size": 10},
        )
        assert slot.status_code == 201
        assert REPLAYED not in slot.headers
        assert len(await idempotency_rows(app)) == 2


INVALID_KEYS = [
    pytest.param("", id="empty"),
    pytest.param("x" * 256, id="too-long"),
    pytest.param("two words", id="space"),
    pytest.param("caf\u00e9", id="not-ascii"),
]


class TestInvalidKeys:
    @pytest.mark.parametrize("key", INVALID_KEYS)
    async def test_a_key_that_is_not_visible_ascii_up_to_255_is_a_400(
        self, client: httpx.AsyncClient, app: Running, key: str
    ) -> None:
        response = await client.post(
            "/api/v1/sessions", headers={b"Idempotency-Key": key.encode("latin-1")}
        )
        assert_problem(response, 400, "idempotency_key_invalid")
        assert await idempotency_rows(app) == []

    async def test_each_operation_refuses_an_invalid_key_and_runs_nothing(
        self, client: httpx.AsyncClient, app: Running, target: Target
    ) -> None:
        before = await target.traces(app)
        response = await target.send(client, "not a key")
        assert_problem(response, 400, "idempotency_key_invalid")
        assert await target.traces(app) == before

    async def test_two_key_headers_are_a_400(self, client: httpx.AsyncClient) -> None:
        headers = [("Idempotency-Key", new_key()), ("Idempotency-Key", new_key())]
        response = await client.post("/api/v1/sessions", headers=headers)
        assert_problem(response, 400, "idempotency_key_invalid")

    async def test_the_longest_and_oddest_valid_keys_work(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        for key in ("k" * 255, "!", '"8e03978e-40d5-43e8-bc93-6894a57f9324"', "~a:b/c=d"):
            first = await client.post("/api/v1/sessions", headers={"Idempotency-Key": key})
            assert first.status_code == 201, first.text
            again = await client.post("/api/v1/sessions", headers={"Idempotency-Key": key})
            assert_replay_of(again, first)


class TestLifetime:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"idempotency_key_ttl": "PT1H", "service_api_keys": ["svc-" + "e" * 40]}

    async def test_an_expired_key_runs_again_and_is_replaced(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock, target: Target
    ) -> None:
        key = new_key()
        first = await target.succeed(client, key)
        clock.advance(timedelta(minutes=59, seconds=59))
        assert_replay_of(await target.send(client, key), first)
        before = await target.traces(app)

        clock.advance(timedelta(seconds=1))
        again = await target.send(client, key)

        if target.operation == "sessions-reset":  # run again: its old token was replaced
            assert_problem(again, 409, "token_replaced")
            # It failed, so it changed nothing: the expired row waits for cleanup.
            assert len(await idempotency_rows(app)) == 1
            return
        assert again.status_code in (200, 201), again.text
        assert REPLAYED not in again.headers
        assert (await target.traces(app))[1] == before[1] + 1
        assert len(await idempotency_rows(app)) == 1  # replaced, not added
        assert_replay_of(await target.send(client, key), again)

    def test_the_default_lifetime_is_24_hours(self) -> None:
        assert Settings().idempotency_key_ttl == timedelta(hours=24)
        assert Settings(idempotency_key_ttl="PT1H").idempotency_key_ttl == timedelta(hours=1)


class TestFailuresAreNotKept:
    async def test_a_refused_request_leaves_nothing_and_its_corrected_retry_runs(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        session = await create_session(client)
        key = new_key()
        headers = {**holder(session), "Idempotency-Key": key}
        wrong = {"name": "a.exe", "content_type": "application/x-msdownload", "size": 10}
        refused = await client.post("/api/v1/session/uploads", headers=headers, json=wrong)
        assert_problem(refused, 422, "unsupported_content_type")
        assert await idempotency_rows(app) == []

        right = {"name": "a.pdf", "content_type": "application/pdf", "size": 10}
        corrected = await client.post("/api/v1/session/uploads", headers=headers, json=right)
        assert corrected.status_code == 201, corrected.text
        assert_replay_of(
            await client.post("/api/v1/session/uploads", headers=headers, json=right), corrected
        )

    async def test_a_request_that_fails_after_the_claim_leaves_no_placeholder(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        session = await create_session(client)
        headers = {**holder(session), "Idempotency-Key": new_key()}
        gone = "/api/v1/session/conversations/00000000-0000-4000-8000-000000000000/messages"
        missing = await client.post(gone, headers=headers, json={"content": "Hello"})
        assert_problem(missing, 404, "conversation_not_found")
        assert await idempotency_rows(app) == []
        again = await client.post(gone, headers=headers, json={"content": "Hello"})
        assert_problem(again, 404, "conversation_not_found")  # run again, not replayed

    async def test_an_invalid_session_is_refused_first_and_not_kept(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        key = new_key()
        unknown = {"X-Session-ID": "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633b", "Idempotency-Key": key}
        refused = await client.post("/api/v1/session/conversations", headers=unknown, json={})
        assert_problem(refused, 401, "session_invalid")
        assert await idempotency_rows(app) == []

    async def test_a_row_without_its_answer_is_a_request_in_progress(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        """A placeholder never commits unfilled; were one found, the retry waits (409)."""
        key = new_key()
        first = await client.post("/api/v1/sessions", headers={"Idempotency-Key": key})
        assert first.status_code == 201
        async with app.resources.engine.begin() as conn:
            await conn.execute(text("UPDATE idempotency_keys SET answer = NULL, session_id = NULL"))
        retried = await client.post("/api/v1/sessions", headers={"Idempotency-Key": key})
        assert_problem(retried, 409, "idempotency_key_in_use")
        assert retried.headers["retry-after"] == "2"
