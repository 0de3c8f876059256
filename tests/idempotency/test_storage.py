"""What the idempotency table keeps: no key, no token, no content in clear; nothing beyond its
session or its lifetime."""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from session_service.cleanup.report import CleanupReport
from session_service.cleanup.runner import job_context
from tests.conftest import FakeClock
from tests.helpers import Running, audit_events, create_session, holder, session_row
from tests.idempotency.conftest import SERVICE, SERVICE_KEY, SLOT, idempotency_rows, keyed, new_key

SECRET = "my card number is 4111 1111 1111 1111"


def _forms(value: str) -> list[bytes]:
    """A token or key as it could be written: text, hex without hyphens, raw UUID bytes."""
    forms = [value.encode(), value.upper().encode(), value.replace("-", "").encode()]
    with contextlib.suppress(ValueError):  # a key need not be a UUID
        forms.append(uuid.UUID(value).bytes)
    return forms


def _as_bytes(value: object) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode()


async def _run_cleanup(app: Running, *, dry_run: bool = False) -> CleanupReport:
    report = await app.resources.cleanup.run_once(dry_run=dry_run, ctx=job_context())
    assert report is not None
    return report


async def _everything_with_keys(client: httpx.AsyncClient) -> tuple[dict[str, Any], list[str]]:
    """A session made and used under keys: create, reset, a slot, a conversation, messages."""
    keys = [new_key() for _ in range(6)]
    created = await client.post("/api/v1/sessions", headers=keyed(keys[0]))
    first = created.json()
    reset = await client.post(
        "/api/v1/session/reset", headers=keyed(keys[1], holder(first)), json={"reason": "reset"}
    )
    session = reset.json()["session"]
    mine = keyed(keys[2], holder(session))
    assert (await client.post("/api/v1/session/uploads", headers=mine, json=SLOT)).is_success
    mine = keyed(keys[3], holder(session))
    conversation = (await client.post("/api/v1/session/conversations", headers=mine)).json()
    messages = f"/api/v1/session/conversations/{conversation['id']}/messages"
    sent = await client.post(
        messages, headers=keyed(keys[4], holder(session)), json={"content": SECRET}
    )
    assert sent.status_code == 201
    reply = f"/api/v1/sessions/{session['id']}/conversations/{conversation['id']}/messages"
    body = {"role": "assistant", "content": SECRET}
    assert (await client.post(reply, headers=keyed(keys[5], SERVICE), json=body)).is_success
    return {"first": first, "session": session}, keys


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"service_api_keys": [SERVICE_KEY]}


class TestNothingInClear:
    async def test_no_token_key_or_content_is_in_the_table(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        made, keys = await _everything_with_keys(client)
        stored = await idempotency_rows(app)
        assert len(stored) == 6
        assert all(row["answer"] for row in stored)
        cells = [_as_bytes(value) for row in stored for value in row.values()]
        secrets = [made["first"]["token"], made["session"]["token"], *keys]
        for secret in secrets:
            for form in _forms(secret):
                assert not any(form in cell for cell in cells), secret
        assert not any(SECRET.encode() in cell for cell in cells)
        # Answers are sealed, not merely encoded: none is JSON or holds a session id.
        for row in stored:
            answer = _as_bytes(row["answer"])
            assert b'"body"' not in answer
            assert b'"status"' not in answer
            assert made["session"]["id"].encode() not in answer

    async def test_the_token_is_nowhere_in_the_database_files_either(
        self, client: httpx.AsyncClient, app: Running, backend: str, database_url: str
    ) -> None:
        if backend != "sqlite":
            pytest.skip("the PostgreSQL table is scanned row by row above")
        made, _ = await _everything_with_keys(client)
        assert len(await idempotency_rows(app)) == 6
        path = Path(database_url.split("///", 1)[1])
        files = [path, path.with_name(path.name + "-wal")]
        content = b"".join(file.read_bytes() for file in files if file.exists())
        for token in (made["first"]["token"], made["session"]["token"]):
            # sessions keep digests only, and idempotency answers are ciphertext
            for form in _forms(token):
                assert form not in content, token


class TestGoneWithTheSession:
    async def test_erasure_removes_the_keys_of_the_session_and_those_it_replaced(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        made, keys = await _everything_with_keys(client)
        other = await client.post("/api/v1/sessions", headers=keyed(new_key()))
        assert len(await idempotency_rows(app)) == 7

        erased = await client.delete("/api/v1/session", headers=holder(made["session"]))

        assert erased.status_code == 204
        [left] = await idempotency_rows(app)
        assert uuid.UUID(str(left["session_id"])) == uuid.UUID(other.json()["id"])
        # The create's key is free again: its retry starts a new session.
        again = await client.post("/api/v1/sessions", headers=keyed(keys[0]))
        assert again.status_code == 201
        assert "idempotent-replayed" not in again.headers
        assert again.json()["id"] != made["first"]["id"]

    async def test_expiry_cleanup_removes_the_keys_with_the_session(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        made, _ = await _everything_with_keys(client)
        clock.advance(timedelta(hours=24, seconds=1))  # the session idles out first
        report = await _run_cleanup(app)
        assert made["session"]["id"] in report.expired_sessions.items
        assert await session_row(app, made["session"]["id"]) is None
        assert await idempotency_rows(app) == []


class TestCleanup:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"service_api_keys": [SERVICE_KEY], "idempotency_key_ttl": "PT1H"}

    async def test_cleanup_deletes_expired_keys_and_keeps_the_rest(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        session = await create_session(client)
        for _ in range(3):
            await client.post(
                "/api/v1/session/conversations", headers=keyed(new_key(), holder(session))
            )
        clock.advance(timedelta(minutes=30))
        kept = keyed(new_key(), holder(session))
        fresh = await client.post("/api/v1/session/conversations", headers=kept)
        assert fresh.status_code == 201
        clock.advance(timedelta(minutes=30))  # the first three are an hour old

        dry = await _run_cleanup(app, dry_run=True)
        assert dry.idempotency_keys.count == 3
        assert len(await idempotency_rows(app)) == 4

        report = await _run_cleanup(app)

        assert report.idempotency_keys.count == 3
        assert report.counts()["idempotency_keys"] == 3
        [left] = await idempotency_rows(app)
        assert left["expires_at"] is not None
        assert await session_row(app, session["id"]) is not None  # the session stays
        completed = [e for e in await audit_events(app) if e["type"] == "cleanup.completed"]
        assert completed[-1]["details"]["counts"]["idempotency_keys"] == 3
        metrics = app.resources.metrics.render().decode()
        assert 'session_service_cleanup_deletions_total{kind="idempotency_keys"} 3.0' in metrics
        # The one kept still replays.
        retried = await client.post("/api/v1/session/conversations", headers=kept)
        assert retried.headers["idempotent-replayed"] == "true"
        assert retried.content == fresh.content


class TestCleanupInBatches:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"idempotency_key_ttl": "PT1H", "cleanup_batch_size": 2}

    async def test_cleanup_deletes_every_expired_key_a_batch_at_a_time(
        self, client: httpx.AsyncClient, app: Running, clock: FakeClock
    ) -> None:
        session = await create_session(client)
        for _ in range(5):
            headers = keyed(new_key(), holder(session))
            await client.post("/api/v1/session/conversations", headers=headers)
        clock.advance(timedelta(hours=1))
        assert (await _run_cleanup(app)).idempotency_keys.count == 5
        assert await idempotency_rows(app) == []
