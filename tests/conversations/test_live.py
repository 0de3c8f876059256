"""Live updates: `GET /session/conversations/{id}/events` streams new messages as
Server-Sent Events, resumes after `Last-Event-ID` from the database, keeps idle streams
talking, and ends with the session, the conversation or the server.

In process on both databases; then through real `serve` processes on PostgreSQL: one
(headers, a slow reader, the graceful stop), two on one database (a message added through
one reaches a stream opened on the other, through LISTEN/NOTIFY), and a listener whose
connection is killed (it reconnects and the stream misses nothing).
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx
import pytest

from session_service import migrations
from session_service.app import create_app
from session_service.conversations.sources import Listening
from session_service.core import pglisten
from session_service.core.settings import Settings
from session_service.http import sse
from tests import pgbouncer
from tests.conftest import PostgresFactory
from tests.conversations.streams import Frame, FrameReader, Opened, open_stream, parse_frame
from tests.helpers import PROBLEM, Running, create_session, holder, running
from tests.processes import free_port, install_hint, require, start_serve, stop, wait_ready

SERVICE_KEY = "svc-" + "l" * 40
SERVICE = {"Authorization": f"Bearer {SERVICE_KEY}"}
HEARTBEAT = 0.3


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"service_api_keys": [SERVICE_KEY], "live_heartbeat_interval": HEARTBEAT}


async def _conversation(client: httpx.AsyncClient, session: dict[str, Any]) -> str:
    created = await client.post("/api/v1/session/conversations", headers=holder(session))
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def _send(
    client: httpx.AsyncClient, session: dict[str, Any], conversation: str, content: str
) -> dict[str, Any]:
    sent = await client.post(
        f"/api/v1/session/conversations/{conversation}/messages",
        headers=holder(session),
        json={"content": content},
    )
    assert sent.status_code == 201, sent.text
    body: dict[str, Any] = sent.json()
    return body


async def _reply(
    client: httpx.AsyncClient, session: dict[str, Any], conversation: str, content: str
) -> dict[str, Any]:
    """The agent backend's reply (service key)."""
    sent = await client.post(
        f"/api/v1/sessions/{session['id']}/conversations/{conversation}/messages",
        headers=SERVICE,
        json={"role": "assistant", "content": content},
    )
    assert sent.status_code == 201, sent.text
    body: dict[str, Any] = sent.json()
    return body


def _events(conversation: str, query: str = "") -> str:
    return f"/api/v1/session/conversations/{conversation}/events{query}"


async def _opened(stream: Opened) -> None:
    """The stream is open: 200, and its first frame (sent once it is subscribed)."""
    assert stream.status == 200
    first = await stream.reader.frame()
    assert first is not None
    assert first.retry == 2000


async def _until_idle(reader: FrameReader) -> list[Frame]:
    """The events sent before the stream first goes idle (its first heartbeat)."""
    events: list[Frame] = []
    while True:
        frame = await reader.frame()
        assert frame is not None, "the stream ended"
        if frame.comments == ["heartbeat"]:
            return events
        events.append(frame)


async def _metric(client: httpx.AsyncClient, name: str) -> float:
    text = (await client.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


class TestInProcess:
    async def test_messages_appear_live_from_either_side_in_order(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        session = await create_session(client)
        conversation = await _conversation(client, session)
        async with open_stream(app, _events(conversation), holder(session)) as stream:
            await _opened(stream)
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert stream.headers["cache-control"] == "no-store"
            assert stream.headers["x-accel-buffering"] == "no"
            assert stream.headers["x-request-id"]
            await _send(client, session, conversation, "hello")
            await _reply(client, session, conversation, "hi, how can I help?")
            frames = [frame for frame in await _until_idle(stream.reader) if frame.event]
            while len(frames) < 2:
                frames += [frame for frame in await _until_idle(stream.reader) if frame.event]
        assert [(f.id, f.event) for f in frames] == [("1", "message"), ("2", "message")]
        assert [(m["seq"], m["role"], m["content"]) for m in (f.message() for f in frames)] == [
            (1, "user", "hello"),
            (2, "assistant", "hi, how can I help?"),
        ]
        assert frames[0].message()["conversation_id"] == conversation
        assert app.resources.feed.open_streams == 0

    async def test_a_waiting_stream_holds_no_database_connection(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        session = await create_session(client)
        conversation = await _conversation(client, session)
        pool = app.resources.engine.pool
        async with open_stream(app, _events(conversation), holder(session)) as stream:
            await _opened(stream)
            for _ in range(3):
                heartbeat = await stream.reader.frame()
                assert heartbeat is not None
                assert heartbeat.comments == ["heartbeat"]
                # Each heartbeat is followed by a short read; then the connection goes back.
                await _eventually(
                    lambda: pool.checkedout() == 0,  # type: ignore[attr-defined]
                    "a waiting stream holds a connection",
                    within=1,
                )

    async def test_resuming_sends_exactly_the_missed_messages(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        session = await create_session(client)
        conversation = await _conversation(client, session)
        for n in range(1, 6):
            await _send(client, session, conversation, f"m{n}")
        resume = {**holder(session), "Last-Event-ID": "2"}
        async with open_stream(app, _events(conversation), resume) as stream:
            await _opened(stream)
            missed = await _until_idle(stream.reader)
            assert [f.id for f in missed] == ["3", "4", "5"]
            assert [f.message()["content"] for f in missed] == ["m3", "m4", "m5"]
            await _send(client, session, conversation, "m6")
            [live] = await stream.reader.messages(1)
            assert live["seq"] == 6
        async with open_stream(app, _events(conversation, "?after=4"), holder(session)) as stream:
            await _opened(stream)
            assert [f.id for f in await _until_idle(stream.reader)] == ["5", "6"]
        both = {**holder(session), "Last-Event-ID": "5"}  # the header wins over `after`
        async with open_stream(app, _events(conversation, "?after=1"), both) as stream:
            await _opened(stream)
            assert [f.id for f in await _until_idle(stream.reader)] == ["6"]
        async with open_stream(app, _events(conversation), holder(session)) as stream:
            await _opened(stream)
            assert await _until_idle(stream.reader) == []  # no position: new messages only
            await _send(client, session, conversation, "m7")
            assert [m["seq"] for m in await stream.reader.messages(1)] == [7]

    async def test_an_idle_stream_sends_heartbeats(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        session = await create_session(client)
        conversation = await _conversation(client, session)
        async with open_stream(app, _events(conversation), holder(session)) as stream:
            await _opened(stream)
            started = time.monotonic()
            frames = [await stream.reader.frame(within=5) for _ in range(2)]
            assert all(frame is not None and frame.comments == ["heartbeat"] for frame in frames)
            assert time.monotonic() - started >= HEARTBEAT

    async def test_refusals_are_problems_and_take_no_place(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        owner, stranger = await create_session(client), await create_session(client)
        conversation = await _conversation(client, owner)
        cases = [
            (holder(stranger), 404, "conversation_not_found"),
            ({}, 401, "session_invalid"),
            ({**holder(owner), "Last-Event-ID": "soon"}, 422, "validation_error"),
        ]
        for headers, status, code in cases:
            async with open_stream(app, _events(conversation), headers) as refused:
                assert refused.status == status, code
                assert refused.headers["content-type"].startswith(PROBLEM)
                body = await refused.json()
                assert body["code"] == code
                assert body["request_id"] == refused.headers["x-request-id"]
        assert app.resources.feed.open_streams == 0

    @pytest.mark.parametrize("ending", ["erasure", "new token", "conversation deleted"])
    async def test_a_stream_ends_with_its_session_or_conversation(
        self, client: httpx.AsyncClient, app: Running, ending: str
    ) -> None:
        session = await create_session(client)
        conversation = await _conversation(client, session)
        async with open_stream(app, _events(conversation), holder(session)) as stream:
            await _opened(stream)
            if ending == "erasure":
                answer = await client.delete("/api/v1/session", headers=holder(session))
            elif ending == "new token":
                answer = await client.put(
                    "/api/v1/session/details",
                    headers=holder(session),
                    json={"name": "Ada", "email": "ada@example.org", "consent_user_data": True},
                )
            else:
                answer = await client.delete(
                    f"/api/v1/session/conversations/{conversation}", headers=holder(session)
                )
            assert answer.status_code in (200, 204), answer.text
            frames = await stream.reader.until_end(within=5)
        assert stream.reader.ended
        assert all(frame.event is None for frame in frames)
        assert app.resources.feed.open_streams == 0

    async def test_a_client_that_stops_reading_is_let_go(
        self, client: httpx.AsyncClient, app: Running, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A write that waits past the stall bound ends the stream (and frees its place);
        the client resumes from its last event id if it ever comes back."""
        monkeypatch.setattr(sse, "STALL_SECONDS", 0.3)
        session = await create_session(client)
        conversation = await _conversation(client, session)
        async with open_stream(app, _events(conversation), holder(session), reads=1) as stream:
            await _opened(stream)
            await _send(client, session, conversation, "never read")
            await asyncio.wait_for(asyncio.shield(stream.task), 5)
            assert app.resources.feed.open_streams == 0

    async def test_closing_the_feed_ends_every_stream(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        """What the server does as its graceful shutdown begins (`lifecycle.stop`)."""
        session = await create_session(client)
        conversation = await _conversation(client, session)
        async with open_stream(app, _events(conversation), holder(session)) as stream:
            await _opened(stream)
            app.resources.feed.close()
            await stream.reader.until_end(within=5)
        async with open_stream(app, _events(conversation), holder(session)) as refused:
            assert refused.status == 503
            assert refused.headers["retry-after"] == "2"
            assert (await refused.json())["code"] == "live_updates_unavailable"

    async def test_metrics_and_readiness(
        self, client: httpx.AsyncClient, app: Running, backend: str
    ) -> None:
        session = await create_session(client)
        conversation = await _conversation(client, session)
        async with open_stream(app, _events(conversation), holder(session)) as stream:
            await _opened(stream)
            assert await _metric(client, "session_service_live_streams") == 1
            await _send(client, session, conversation, "one")
            await _reply(client, session, conversation, "two")
            await stream.reader.messages(2)
            assert await _metric(client, "session_service_live_events_sent_total") == 2
        assert await _metric(client, "session_service_live_streams") == 0
        expected = "ok: in-process" if backend == "sqlite" else "ok: listening"
        deadline = time.monotonic() + 10
        while (await client.get("/readyz")).json()["checks"]["live"] != expected:
            assert time.monotonic() < deadline, "the listener never listened"
            await asyncio.sleep(0.05)
        listening = await _metric(client, "session_service_live_listener_up")
        assert listening == (0 if backend == "sqlite" else 1)


def test_the_stream_is_documented_as_server_sent_events() -> None:
    document = create_app().openapi()
    operation = document["paths"]["/api/v1/session/conversations/{conversation_id}/events"]["get"]
    assert operation["operationId"] == "conversations-stream-messages"
    assert list(operation["responses"]["200"]["content"]) == ["text/event-stream"]
    assert {"401", "404", "409", "422", "429", "503"} <= set(operation["responses"])
    headers = {p["name"]: p for p in operation["parameters"] if p["in"] == "header"}
    assert headers["X-Session-ID"]["required"] is True
    last_event_id = headers["Last-Event-ID"]
    assert last_event_id["required"] is False
    assert last_event_id["schema"]["type"] == "integer"  # a header is text or absent, no null


class TestLimits:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"live_max_streams": 2, "live_max_streams_per_session": 1}

    async def test_streams_are_bounded_per_session_and_per_process(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        first, second, third = [await create_session(client) for _ in range(3)]
        conversations = [await _conversation(client, s) for s in (first, second, third)]
        async with open_stream(app, _events(conversations[0]), holder(first)) as one:
            await _opened(one)
            async with open_stream(app, _events(conversations[0]), holder(first)) as again:
                assert again.status == 409
                body = await again.json()
                assert (body["code"], body["max_streams"]) == ("stream_limit_reached", 1)
            async with open_stream(app, _events(conversations[1]), holder(second)) as two:
                await _opened(two)
                async with open_stream(app, _events(conversations[2]), holder(third)) as full:
                    assert full.status == 503
                    assert full.headers["retry-after"] == "2"
                    assert (await full.json())["code"] == "live_updates_unavailable"
        assert app.resources.feed.open_streams == 0
        async with open_stream(app, _events(conversations[0]), holder(first)) as freed:
            await _opened(freed)


# Real servers on PostgreSQL.


def _serve_env(database: str, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database,
        "AUTO_MIGRATE": "false",
        "SERVICE_API_KEYS": json.dumps([SERVICE_KEY]),
        "RATE_LIMIT_ENABLED": "false",
        "CLEANUP_ENABLED": "false",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "info",
        "ACCESS_LOG": "false",
        "SHUTDOWN_DRAIN_SECONDS": "0.5",
        "LIVE_HEARTBEAT_INTERVAL": "60",  # only notifications can deliver within a test
        **extra,
    }


async def _migrated(postgres: PostgresFactory) -> str:
    database = await asyncio.to_thread(postgres.create)
    await asyncio.to_thread(migrations.upgrade, database)
    return database


async def _wait_listening(client: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + 15
    while (await client.get("/readyz")).json()["checks"].get("live") != "ok: listening":
        assert time.monotonic() < deadline, "the instance never listened"
        await asyncio.sleep(0.05)


@asynccontextmanager
async def _http_stream(
    client: httpx.AsyncClient, target: str, headers: dict[str, str]
) -> AsyncIterator[tuple[httpx.Response, FrameReader]]:
    """A stream read over HTTP with httpx."""
    async with client.stream("GET", target, headers=headers, timeout=None) as response:
        yield response, FrameReader(response.aiter_raw())


@pytest.mark.timeout(120)
async def test_a_stream_through_a_real_server_and_its_graceful_stop(
    postgres: PostgresFactory, tmp_path: Path
) -> None:
    database = await _migrated(postgres)
    port = free_port()
    server = start_serve(_serve_env(database), tmp_path, port)
    log = tmp_path / f"serve-{port}.log"
    try:
        await asyncio.to_thread(wait_ready, port, server)
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            await _wait_listening(client)
            session = await create_session(client)
            conversation = await _conversation(client, session)
            await _send(client, session, conversation, "before")
            resume = {**holder(session), "Last-Event-ID": "0"}
            async with _http_stream(client, _events(conversation), resume) as (response, reader):
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                assert response.headers["cache-control"] == "no-store"
                assert response.headers["transfer-encoding"] == "chunked"
                assert "content-length" not in response.headers
                first = await reader.frame()
                assert first is not None
                assert first.retry == 2000
                assert [m["content"] for m in await reader.messages(1)] == ["before"]
                await _reply(client, session, conversation, "live")
                assert [m["seq"] for m in await reader.messages(1)] == [2]
                started = time.monotonic()
                server.send_signal(signal.SIGTERM)
                # The drain (0.5 s) keeps it open; then the stream ends cleanly.
                assert await reader.until_end(within=15) == []
                assert time.monotonic() - started >= 0.5
        assert await asyncio.to_thread(server.wait, 15) == 0
    finally:
        stop(server)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    ended = [line for line in lines if line.get("event") == "live_stream_ended"]
    assert [line["reason"] for line in ended] == ["shutdown"], ended
    assert ended[0]["sent"] == 2


def _dechunk(raw: bytes) -> tuple[bytes, bytes]:
    """A chunked body's payload so far, and what is left of an incomplete chunk."""
    payload = b""
    while True:
        size_line, sep, rest = raw.partition(b"\r\n")
        if not sep:
            return payload, raw
        size = int(size_line, 16)
        if len(rest) < size + 2:
            return payload, raw
        payload += rest[:size]
        raw = rest[size + 2 :]
        if size == 0:
            return payload, raw


@pytest.mark.timeout(180)
async def test_a_reader_that_falls_behind_gets_everything_without_gaps(
    postgres: PostgresFactory, tmp_path: Path
) -> None:
    """The client stops reading while 5 MB of messages arrive (more than the socket buffers
    take: the server's writes block and its stream falls behind); when it reads again it
    gets every message, each once, in order: read from the database."""
    database = await _migrated(postgres)
    port = free_port()
    server = start_serve(_serve_env(database), tmp_path, port)
    count, size = 160, 31_000
    try:
        await asyncio.to_thread(wait_ready, port, server)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            session = await create_session(client)
            conversation = await _conversation(client, session)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", port))
            sock.sendall(
                f"GET {_events(conversation)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"X-Session-ID: {session['token']}\r\n\r\n".encode()
            )
            sock.settimeout(10)
            raw = b""
            while b"\r\n\r\n" not in raw:
                raw += sock.recv(4096)
            head, raw = raw.split(b"\r\n\r\n", 1)
            assert head.startswith(b"HTTP/1.1 200"), head
            for n in range(count):
                await _reply(client, session, conversation, f"{n + 1:05d}" + "x" * size)
            handed = await _metric(client, "session_service_live_events_sent_total")
            assert handed < count  # the stream is stuck in a write: it fell behind
            body = b""
            seqs: list[int] = []
            deadline = time.monotonic() + 90
            while len(seqs) < count and time.monotonic() < deadline:
                raw += await asyncio.to_thread(sock.recv, 65536)
                payload, raw = _dechunk(raw)
                body += payload
                *complete, body = body.split(b"\n\n")
                for frame in map(parse_frame, (part.decode() for part in complete)):
                    if frame.event == "message":
                        message = frame.message()
                        assert message["content"].startswith(f"{message['seq']:05d}")
                        seqs.append(message["seq"])
            sock.close()
        assert seqs == list(range(1, count + 1))
    finally:
        stop(server)


@pytest.mark.timeout(180)
async def test_a_message_added_on_one_instance_reaches_a_stream_on_another(
    postgres: PostgresFactory, tmp_path: Path
) -> None:
    """Two instances on one database: the agent's replies go to A, the stream is on B."""
    database = await _migrated(postgres)
    servers = []
    bases = []
    for name in ("a", "b"):
        home = tmp_path / name
        home.mkdir()
        port = free_port()
        servers.append(start_serve(_serve_env(database), home, port))
        bases.append(f"http://127.0.0.1:{port}")
    latencies: list[float] = []
    try:
        for server, base in zip(servers, bases, strict=True):
            await asyncio.to_thread(wait_ready, int(base.rsplit(":", 1)[1]), server)
        async with (
            httpx.AsyncClient(base_url=bases[0], timeout=10) as a,
            httpx.AsyncClient(base_url=bases[1], timeout=10) as b,
        ):
            await _wait_listening(a)
            await _wait_listening(b)
            session = await create_session(a)
            conversation = await _conversation(a, session)
            async with _http_stream(b, _events(conversation), holder(session)) as (_, reader):
                first = await reader.frame()
                assert first is not None
                assert first.retry == 2000
                for n in range(1, 11):
                    started = time.monotonic()
                    await _reply(a, session, conversation, f"reply {n}")
                    [message] = await reader.messages(1, within=10)
                    latencies.append(time.monotonic() - started)
                    assert (message["seq"], message["content"]) == (n, f"reply {n}")
    finally:
        for server in servers:
            stop(server)
    print(
        f"\ncross-instance latency (append sent to A -> event on B), {len(latencies)} "
        f"messages: median {statistics.median(latencies) * 1000:.1f} ms, "
        f"max {max(latencies) * 1000:.1f} ms"
    )


def _settings(database: str, tmp_path: Path, **extra: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database,
        "service_api_keys": [SERVICE_KEY],
        "live_heartbeat_interval": 60,  # only the reconnect's catch-up can deliver in time
        "access_log": False,
        "local_storage_dir": tmp_path / "storage",
        "signing_key_file": tmp_path / "signing.key",
        "audit_seal_interval": 0,
        "rate_limit_enabled": False,
        "cleanup_enabled": False,
        "allowed_hosts": ["testserver"],
        **extra,
    }
    return Settings(**values)  # type: ignore[arg-type]


async def _listeners(database: str) -> list[int]:
    connection = await asyncpg.connect(database.replace("+asyncpg", ""))
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1"
            " AND datname = current_database()",
            pglisten.APPLICATION_NAME,
        )
        return [row["pid"] for row in rows]
    finally:
        await connection.close()


async def _terminate(database: str, pids: list[int]) -> None:
    connection = await asyncpg.connect(database.replace("+asyncpg", ""))
    try:
        for pid in pids:
            await connection.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await connection.close()


async def _eventually(condition: Any, what: str, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


@pytest.fixture
async def two_apps(
    postgres: PostgresFactory, tmp_path: Path
) -> AsyncIterator[tuple[Running, Running, str]]:
    """Two instances in this process on one fresh PostgreSQL database, both listening."""
    database = await _migrated(postgres)
    settings = _settings(database, tmp_path)
    async with running(create_app(settings)) as a, running(create_app(settings)) as b:
        for instance in (a, b):
            feed = instance.resources.feed
            await _eventually(lambda feed=feed: feed.listening, "an instance never listened")
        yield a, b, database


@pytest.mark.timeout(60)
async def test_a_killed_listener_reconnects_and_the_stream_misses_nothing(
    two_apps: tuple[Running, Running, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, database = two_apps
    transport = httpx.ASGITransport(app=a)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        session = await create_session(client)
        conversation = await _conversation(client, session)
        async with open_stream(b, _events(conversation), holder(session)) as stream:
            await _opened(stream)
            await _reply(client, session, conversation, "one")
            assert [m["content"] for m in await stream.reader.messages(1)] == ["one"]

            monkeypatch.setattr(pglisten, "RETRY_MIN", 2.0)  # B stays away a while
            killed = await _listeners(database)
            assert len(killed) == 2  # A's and B's
            await _terminate(database, killed)
            feed = b.resources.feed
            await _eventually(lambda: not feed.listening, "B never noticed", within=5)
            await _reply(client, session, conversation, "two")  # its NOTIFY reaches no B
            assert not feed.listening

            [missed] = await stream.reader.messages(1, within=15)
            assert (missed["seq"], missed["content"]) == (2, "two")
            listener = cast(Listening, b.resources.live_source).listener
            assert listener.sessions == 2
            assert not set(await _listeners(database)) & set(killed)
            await _reply(client, session, conversation, "three")
            assert [m["seq"] for m in await stream.reader.messages(1)] == [3]


@pytest.mark.timeout(90)
async def test_behind_pgbouncer_streams_poll_or_listen_on_a_direct_url(
    postgres: PostgresFactory, tmp_path: Path
) -> None:
    """Transaction pooling cannot LISTEN. Instance P (no DATABASE_LISTEN_URL) polls; instance
    L listens on a direct connection. Appends NOTIFY through PgBouncer either way."""
    require(pgbouncer.available(), f"pgbouncer is not installed: {install_hint('pgbouncer')}")
    direct = await _migrated(postgres)
    with pgbouncer.transaction_pooler() as port:
        bounced = direct.replace(":5432/", f":{port}/")
        common = {"database_pgbouncer": True, "live_poll_interval": 0.2}
        polling = _settings(bounced, tmp_path, **common)
        listening = _settings(bounced, tmp_path, database_listen_url=direct, **common)
        async with (
            running(create_app(polling)) as poller,
            running(create_app(listening)) as listener,
        ):
            await _eventually(lambda: listener.resources.feed.listening, "L never listened")
            clients = {
                name: httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://testserver"
                )
                for name, app in (("p", poller), ("l", listener))
            }
            try:
                assert (await clients["p"].get("/readyz")).json()["checks"]["live"] == (
                    "ok: polling"
                )
                assert not poller.resources.feed.listening
                session = await create_session(clients["p"])
                conversation = await _conversation(clients["p"], session)
                for stream_on, add_on in ((poller, "l"), (listener, "p")):
                    async with open_stream(stream_on, _events(conversation), holder(session)) as s:
                        await _opened(s)
                        added = await _reply(clients[add_on], session, conversation, add_on)
                        [message] = await s.reader.messages(1, within=10)
                        assert message["id"] == added["id"]
            finally:
                for client in clients.values():
                    await client.aclose()
