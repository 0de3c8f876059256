"""A live `session-service serve` on a fresh PostgreSQL database, shared by this package's
tests, and the browser's side of a conversation (a session, a conversation, messages)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from session_service import migrations
from tests.conftest import PostgresFactory
from tests.processes import free_port, start_serve, stop, wait_ready

SERVICE_KEY = "svc-" + "i" * 40


@dataclass(frozen=True, slots=True)
class Live:
    """The running service: its base URL and a service key."""

    base_url: str
    key: str

    def service(self) -> httpx.Client:
        """A client that sends the service key."""
        headers = {"Authorization": f"Bearer {self.key}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=10)


@dataclass(frozen=True, slots=True)
class Visitor:
    """A browser's session and one conversation in it."""

    live: Live
    session_id: str
    token: str
    conversation_id: str

    def send(self, content: str) -> dict[str, Any]:
        """The visitor's message (role `user`), as stored."""
        sent = httpx.post(
            f"{self.live.base_url}/api/v1/session/conversations/{self.conversation_id}/messages",
            headers={"X-Session-ID": self.token},
            json={"content": content},
            timeout=10,
        )
        assert sent.status_code == 201, sent.text
        body: dict[str, Any] = sent.json()
        return body

    def history(self) -> list[dict[str, Any]]:
        """Every message, oldest first, as the browser reads them (one page is enough)."""
        read = httpx.get(
            f"{self.live.base_url}/api/v1/session/conversations/{self.conversation_id}/messages",
            params={"after": 0, "limit": 200},
            headers={"X-Session-ID": self.token},
            timeout=10,
        )
        assert read.status_code == 200, read.text
        messages: list[dict[str, Any]] = read.json()["messages"]
        return messages

    def conversations(self) -> list[str]:
        """The ids of the session's conversations."""
        listed = httpx.get(
            f"{self.live.base_url}/api/v1/session/conversations",
            headers={"X-Session-ID": self.token},
            timeout=10,
        )
        assert listed.status_code == 200, listed.text
        return [conversation["id"] for conversation in listed.json()["conversations"]]


@pytest.fixture(scope="package")
def live(postgres: PostgresFactory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    database = postgres.create()
    migrations.upgrade(database)
    home = tmp_path_factory.mktemp("live")
    port = free_port()
    env = {
        "DATABASE_URL": database,
        "SERVICE_API_KEYS": json.dumps([SERVICE_KEY]),
        "RATE_LIMIT_ENABLED": "false",
        "CLEANUP_ENABLED": "false",
        "LOG_LEVEL": "warning",
        "SHUTDOWN_DRAIN_SECONDS": "0",  # nothing balances this one instance
    }
    server = start_serve(env, home, port)
    try:
        wait_ready(port, server)
        yield Live(f"http://127.0.0.1:{port}", SERVICE_KEY)
    finally:
        stop(server)


@pytest.fixture
def visitor(live: Live) -> Visitor:
    """A new session with one conversation, created as the browser does."""
    created = httpx.post(f"{live.base_url}/api/v1/sessions", timeout=10)
    assert created.status_code == 201, created.text
    session = created.json()
    started = httpx.post(
        f"{live.base_url}/api/v1/session/conversations",
        headers={"X-Session-ID": session["token"]},
        json={"title": "Support"},
        timeout=10,
    )
    assert started.status_code == 201, started.text
    return Visitor(live, session["id"], session["token"], started.json()["id"])
