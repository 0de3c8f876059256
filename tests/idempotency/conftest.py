"""The operations that take `Idempotency-Key`, each ready to be sent as its client would.

`Target` is one operation with what it needs (a session, a conversation), the body a
client sends and another body (a different request), and the table and audit event that
show whether it ran.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import pytest

from tests.files.helpers import PDF
from tests.helpers import Running, create_session, holder, rows

SERVICE_KEY = "svc-" + "e" * 40
SERVICE = {"Authorization": f"Bearer {SERVICE_KEY}"}
SLOT = {"name": "report.pdf", "content_type": "application/pdf", "size": len(PDF)}


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"service_api_keys": [SERVICE_KEY]}


def new_key() -> str:
    """What the browser module sends: a fresh UUIDv4 per logical call."""
    return str(uuid.uuid4())


def keyed(key: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    return {**(headers or {}), "Idempotency-Key": key}


@dataclass
class Target:
    """One operation, ready to send: where, as whom, with which body."""

    spec: Spec
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    session: dict[str, Any] | None = None

    @property
    def operation(self) -> str:
        return self.spec.operation

    async def send(
        self,
        client: httpx.AsyncClient,
        key: str | None,
        *,
        other: bool = False,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = dict(self.headers if headers is None else headers)
        if key is not None:
            sent["Idempotency-Key"] = key
        body = self.spec.other_body if other else self.spec.body
        return await client.post(self.path, headers=sent, json=body)

    def owner(self, answer: httpx.Response) -> uuid.UUID:
        """The session an answer belongs to: the one it created, or the caller's."""
        body = answer.json()
        if self.operation == "sessions-create":
            return uuid.UUID(body["id"])
        if self.operation == "sessions-reset":
            return uuid.UUID(body["session"]["id"])
        assert self.session is not None
        return uuid.UUID(self.session["id"])

    async def succeed(self, client: httpx.AsyncClient, key: str) -> httpx.Response:
        """The first call under `key`: it runs, and succeeds."""
        first = await self.send(client, key)
        assert first.status_code in (200, 201), first.text
        return first

    async def traces(self, app: Running) -> tuple[int, int]:
        """Rows of the table it writes, and audit events of its type: what running leaves."""
        written = await rows(app, f"SELECT count(*) AS n FROM {self.spec.table}")
        events = await rows(
            app, "SELECT count(*) AS n FROM audit_events WHERE type = :type", type=self.spec.event
        )
        return int(written[0]["n"]), int(events[0]["n"])


async def _conversation(client: httpx.AsyncClient, session: dict[str, Any]) -> str:
    created = await client.post(
        "/api/v1/session/conversations", headers=holder(session), json={"title": "Help"}
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


@dataclass(frozen=True, slots=True)
class Spec:
    """An operation as its client calls it: `path` may name `{session_id}` and
    `{conversation_id}`, which are made for it; `caller` says which credential it sends."""

    operation: str
    path: str
    table: str
    event: str
    body: Any
    other_body: Any
    caller: Literal["anyone", "holder", "service"] = "holder"

    async def ready(self, client: httpx.AsyncClient) -> Target:
        """A target of this operation with what it needs: a session, a conversation."""
        if self.caller == "anyone":
            return Target(self, self.path)
        session = await create_session(client)
        conversation = await _conversation(client, session) if "{conv" in self.path else ""
        path = self.path.format(session_id=session["id"], conversation_id=conversation)
        headers = SERVICE if self.caller == "service" else holder(session)
        return Target(self, path, headers=headers, session=session)


MESSAGES = "/api/v1/session/conversations/{conversation_id}/messages"
SERVICE_MESSAGES = "/api/v1/sessions/{session_id}/conversations/{conversation_id}/messages"
REPLY = {"role": "assistant", "content": "Hi! How can I help?"}
SPECS = [
    Spec("sessions-create", "/api/v1/sessions", "sessions", "session.created", None, {}, "anyone"),
    Spec(
        "sessions-reset",
        "/api/v1/session/reset",
        "sessions",
        "session.reset",
        {"reason": "user_requested"},
        {"reason": "tampered"},
    ),
    Spec(
        "files-create-upload",
        "/api/v1/session/uploads",
        "files",
        "file.slot_issued",
        SLOT,
        {**SLOT, "name": "other.pdf"},
    ),
    Spec(
        "conversations-create",
        "/api/v1/session/conversations",
        "conversations",
        "conversation.created",
        {"title": "Help"},
        {"title": "Other"},
    ),
    Spec(
        "conversations-send-message",
        MESSAGES,
        "messages",
        "conversation.message_added",
        {"content": "Hello"},
        {"content": "Goodbye"},
    ),
    Spec(
        "service-add-message",
        SERVICE_MESSAGES,
        "messages",
        "conversation.message_added",
        REPLY,
        {**REPLY, "content": "Something else"},
        "service",
    ),
]
TARGETS: dict[str, Callable[[httpx.AsyncClient], Awaitable[Target]]] = {
    spec.operation: spec.ready for spec in SPECS
}
# The ones the browser sends with its token in X-Session-ID.
HOLDER_TARGETS = [
    "sessions-reset",
    "files-create-upload",
    "conversations-create",
    "conversations-send-message",
]


@pytest.fixture(params=list(TARGETS))
async def target(request: pytest.FixtureRequest, client: httpx.AsyncClient) -> Target:
    """Each operation that takes `Idempotency-Key`, ready to send."""
    return await TARGETS[request.param](client)


async def idempotency_rows(app: Running) -> list[dict[str, Any]]:
    return await rows(app, "SELECT * FROM idempotency_keys")
