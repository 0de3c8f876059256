"""Conversation history bound to the session, on both databases: create, append, read back,
idempotent retries, attachments, limits, the agent's side, erasure and export."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest

from tests.files.helpers import request_slot, upload_file
from tests.helpers import Running, assert_problem, audit_events, create_session, holder, rows

SERVICE_KEY = "svc-" + "c" * 40
SERVICE = {"Authorization": f"Bearer {SERVICE_KEY}"}
SECRET = "my card number is 4111 1111 1111 1111"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {
        "service_api_keys": [SERVICE_KEY],
        "message_max_chars": 200,
        "conversation_max_messages": 6,
    }


async def _conversation(client: httpx.AsyncClient, session: dict[str, Any]) -> str:
    created = await client.post(
        "/api/v1/session/conversations", headers=holder(session), json={"title": "Help"}
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def _send(
    client: httpx.AsyncClient, session: dict[str, Any], conversation: str, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/api/v1/session/conversations/{conversation}/messages",
        headers=holder(session),
        json={"content": "hello", **body},
    )


class TestHistory:
    async def test_history_comes_back_in_order_across_pages(
        self, client: httpx.AsyncClient
    ) -> None:
        session = await create_session(client)
        conversation = await _conversation(client, session)
        for n in range(5):
            sent = await _send(client, session, conversation, content=f"m{n}")
            assert sent.status_code == 201
            assert sent.json()["seq"] == n + 1
            assert sent.json()["role"] == "user"
        path = f"/api/v1/session/conversations/{conversation}/messages"
        newest = (await client.get(f"{path}?limit=2", headers=holder(session))).json()
        assert [m["content"] for m in newest["messages"]] == ["m4", "m3"]
        assert newest["next_before"] == 4
        older = await client.get(
            f"{path}?before={newest['next_before']}&limit=10", headers=holder(session)
        )
        assert [m["seq"] for m in older.json()["messages"]] == [3, 2, 1]
        assert older.json()["next_before"] is None
        after = (await client.get(f"{path}?after=3", headers=holder(session))).json()
        assert [m["seq"] for m in after["messages"]] == [4, 5]
        assert after["next_after"] == 5
        listed = await client.get("/api/v1/session/conversations", headers=holder(session))
        [only] = listed.json()["conversations"]
        assert (only["id"], only["title"], only["last_seq"], only["message_count"]) == (
            conversation,
            "Help",
            5,
            5,
        )

    async def test_another_sessions_conversation_is_not_found(
        self, client: httpx.AsyncClient
    ) -> None:
        owner, stranger = await create_session(client), await create_session(client)
        conversation = await _conversation(client, owner)
        assert_problem(await _send(client, stranger, conversation), 404, "conversation_not_found")
        listed = await client.get(
            f"/api/v1/session/conversations/{conversation}/messages", headers=holder(stranger)
        )
        assert_problem(listed, 404, "conversation_not_found")

    async def test_rename_and_delete(self, client: httpx.AsyncClient, app: Running) -> None:
        session = await create_session(client)
        conversation = await _conversation(client, session)
        await _send(client, session, conversation)
        path = f"/api/v1/session/conversations/{conversation}"
        renamed = await client.patch(path, headers=holder(session), json={"title": None})
        assert renamed.status_code == 200
        assert renamed.json()["title"] is None
        assert (await client.delete(path, headers=holder(session))).status_code == 204
        assert await rows(app, "SELECT id FROM messages") == []
        assert_problem(await _send(client, session, conversation), 404, "conversation_not_found")
        deleted = [e for e in await audit_events(app) if e["type"] == "conversation.deleted"]
        assert deleted[0]["details"] == {"conversation_id": conversation, "messages": 1}


class TestAppends:
    async def test_a_retried_append_stores_one_message(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        session = await create_session(client)
        conversation = await _conversation(client, session)
        answers = await asyncio.gather(
            *(_send(client, session, conversation, client_message_id="m-1") for _ in range(20))
        )
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [200] * 19 + [201]
        assert len({answer.json()["id"] for answer in answers}) == 1
        assert len(await rows(app, "SELECT id FROM messages")) == 1
        added = [e for e in await audit_events(app) if e["type"] == "conversation.message_added"]
        assert len(added) == 1

    async def test_the_browser_writes_role_user_only(self, client: httpx.AsyncClient) -> None:
        session = await create_session(client)
        conversation = await _conversation(client, session)
        refused = await _send(client, session, conversation, role="assistant")
        assert_problem(refused, 422, "validation_error")

    async def test_attachments_must_be_uploaded_files_of_the_session(
        self, client: httpx.AsyncClient
    ) -> None:
        session, other = await create_session(client), await create_session(client)
        conversation = await _conversation(client, session)
        mine = await upload_file(client, session)
        theirs = await upload_file(client, other)
        pending = (await request_slot(client, session)).json()["file"]
        attached = await _send(client, session, conversation, attachments=[mine["id"]])
        assert attached.status_code == 201
        assert attached.json()["attachments"] == [mine["id"]]
        for refused_id in (theirs["id"], pending["id"], str(uuid.uuid4())):
            refused = await _send(client, session, conversation, attachments=[refused_id])
            body = assert_problem(refused, 422, "attachment_not_uploaded")
            assert body["files"] == [refused_id]

    async def test_limits(self, client: httpx.AsyncClient) -> None:
        session = await create_session(client)
        conversation = await _conversation(client, session)
        too_long = await _send(client, session, conversation, content="x" * 201)
        assert assert_problem(too_long, 422, "message_too_long")["max_chars"] == 200
        big = {"blob": "y" * 5000}
        assert_problem(
            await _send(client, session, conversation, metadata=big), 422, "validation_error"
        )
        for _ in range(6):
            assert (await _send(client, session, conversation)).status_code == 201
        full = await _send(client, session, conversation)
        assert assert_problem(full, 409, "conversation_limit_reached")["max_messages"] == 6

    async def test_the_audit_event_holds_no_content(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        session = await create_session(client)
        conversation = await _conversation(client, session)
        sent = (await _send(client, session, conversation, content=SECRET)).json()
        [event] = [e for e in await audit_events(app) if e["type"] == "conversation.message_added"]
        assert event["details"] == {
            "conversation_id": conversation,
            "message_id": sent["id"],
            "seq": 1,
            "role": "user",
            "chars": len(SECRET),
            "attachments": 0,
        }
        assert "4111" not in json.dumps(await audit_events(app), default=str)


class TestAgent:
    async def test_the_agent_reads_context_and_replies_idempotently(
        self, client: httpx.AsyncClient
    ) -> None:
        session = await create_session(client)
        conversation = await _conversation(client, session)
        await _send(client, session, conversation, content="What is 2+2?")
        base = f"/api/v1/sessions/{session['id']}/conversations"
        listed = await client.get(base, headers=SERVICE)
        assert [c["id"] for c in listed.json()["conversations"]] == [conversation]
        context = await client.get(f"{base}/{conversation}/messages?limit=50", headers=SERVICE)
        assert [m["content"] for m in context.json()["messages"]] == ["What is 2+2?"]
        reply = {"role": "assistant", "content": "4", "client_message_id": "r-1"}
        first = await client.post(f"{base}/{conversation}/messages", headers=SERVICE, json=reply)
        again = await client.post(f"{base}/{conversation}/messages", headers=SERVICE, json=reply)
        assert (first.status_code, again.status_code) == (201, 200)
        assert first.json()["id"] == again.json()["id"]
        history = await client.get(
            f"/api/v1/session/conversations/{conversation}/messages?after=0",
            headers=holder(session),
        )
        assert [(m["role"], m["content"]) for m in history.json()["messages"]] == [
            ("user", "What is 2+2?"),
            ("assistant", "4"),
        ]

    async def test_nothing_is_added_to_an_ended_session(self, client: httpx.AsyncClient) -> None:
        session = await create_session(client)
        conversation = await _conversation(client, session)
        reset = await client.post(
            "/api/v1/session/reset", headers=holder(session), json={"reason": "expired"}
        )
        assert reset.status_code == 201
        added = await client.post(
            f"/api/v1/sessions/{session['id']}/conversations/{conversation}/messages",
            headers=SERVICE,
            json={"role": "assistant", "content": "late"},
        )
        assert assert_problem(added, 409, "session_inactive")["session_status"] == "reset"
        # A reset does not carry the conversation over.
        fresh = reset.json()["session"]
        listed = await client.get("/api/v1/session/conversations", headers=holder(fresh))
        assert listed.json()["conversations"] == []

    async def test_the_agent_deletes_a_conversation(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        session, other = await create_session(client), await create_session(client)
        conversation = await _conversation(client, session)
        kept = await _conversation(client, session)
        await _send(client, session, conversation, content="forget me")
        await _send(client, session, kept, content="keep me")
        path = f"/api/v1/sessions/{session['id']}/conversations/{conversation}"
        assert_problem(await client.delete(path), 401, "unauthorized")
        elsewhere = f"/api/v1/sessions/{other['id']}/conversations/{conversation}"
        assert_problem(
            await client.delete(elsewhere, headers=SERVICE), 404, "conversation_not_found"
        )
        assert (await client.delete(path, headers=SERVICE)).status_code == 204
        assert_problem(await client.delete(path, headers=SERVICE), 404, "conversation_not_found")
        assert [r["content"] for r in await rows(app, "SELECT content FROM messages")] == [
            "keep me"
        ]
        listed = await client.get("/api/v1/session/conversations", headers=holder(session))
        assert [c["id"] for c in listed.json()["conversations"]] == [kept]
        deleted = [e for e in await audit_events(app) if e["type"] == "conversation.deleted"]
        assert [(e["session_id"], e["details"]) for e in deleted] == [
            (session["id"], {"conversation_id": conversation, "messages": 1})
        ]
        # An ended session's history can still be deleted (nothing is added to it).
        reset = await client.post(
            "/api/v1/session/reset", headers=holder(session), json={"reason": "expired"}
        )
        assert reset.status_code == 201
        ended = f"/api/v1/sessions/{session['id']}/conversations/{kept}"
        assert (await client.delete(ended, headers=SERVICE)).status_code == 204
        assert await rows(app, "SELECT id FROM messages") == []


class TestPrivacy:
    async def test_erasure_leaves_no_message_and_export_has_them_all(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        session = await create_session(client)
        conversation = await _conversation(client, session)
        await _send(client, session, conversation, content=SECRET)
        exported = await client.get("/api/v1/session/export", headers=holder(session))
        document = exported.json()
        [exported_conversation] = document["conversations"]
        assert exported_conversation["id"] == conversation
        assert [m["content"] for m in exported_conversation["messages"]] == [SECRET]
        erased = await client.delete("/api/v1/session", headers=holder(session))
        assert erased.status_code == 204
        assert await rows(app, "SELECT id FROM messages") == []
        assert await rows(app, "SELECT id FROM conversations") == []
        [event] = [e for e in await audit_events(app) if e["type"] == "session.erased"]
        assert event["details"]["messages"] == 1


async def test_a_range_between_two_seqs(client: httpx.AsyncClient) -> None:
    session = await create_session(client)
    conversation = await _conversation(client, session)
    for n in range(6):
        await _send(client, session, conversation, content=f"m{n}")
    path = f"/api/v1/session/conversations/{conversation}/messages?after=2&before=5"
    page = (await client.get(path, headers=holder(session))).json()
    assert [m["seq"] for m in page["messages"]] == [3, 4]
