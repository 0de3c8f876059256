"""Real receivers for alerts: an aiosmtpd SMTP server and a minimal HTTP/1.1 webhook server.

Both listen on loopback and keep what they receive, so tests read the exact bytes a mail
server or webhook endpoint would get.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope
from pydantic import SecretStr

from session_service.notify.notifier import AlertNotifier
from session_service.notify.smtp import SmtpChannel
from session_service.notify.webhook import WebhookChannel
from tests.conftest import FakeClock
from tests.processes import free_port

WINDOW = timedelta(minutes=5)
SENDER = "alerts@service.example"
ADMIN = "admin@example.org"
WEBHOOK_SECRET = "whsec-" + "k" * 32
WEBHOOK_TOKEN = "tok-" + "t" * 24


class SmtpSink:
    """An SMTP server (aiosmtpd, in its own thread) that keeps every accepted message."""

    def __init__(self) -> None:
        self.port = 0
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted"

    def messages(self) -> list[EmailMessage]:
        """The accepted messages, parsed as a mail client would."""
        parsed = []
        for envelope in self.envelopes:
            content = envelope.original_content or b""
            message = email.message_from_bytes(content, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            parsed.append(message)
        return parsed


@contextmanager
def running_smtp(**options: Any) -> Iterator[SmtpSink]:
    """An `SmtpSink` on a free loopback port while the block runs."""
    sink = SmtpSink()
    sink.port = free_port()
    mail_log = logging.getLogger("mail.log")  # aiosmtpd logs every command at INFO
    level = mail_log.level
    mail_log.setLevel(logging.WARNING)
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port, **options)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()
        mail_log.setLevel(level)


@pytest.fixture
def smtp_server() -> Iterator[SmtpSink]:
    with running_smtp() as sink:
        yield sink


@dataclass
class Received:
    """One HTTP request as it arrived."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """Answers every POST with `status`, after `hold` is set when a test holds it."""

    port: int = 0
    status: int = 200
    hold: asyncio.Event | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    requests: list[Received] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/alerts?token={WEBHOOK_TOKEN}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = (await reader.readline()).decode("latin-1")
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            method, target, _ = request_line.split(" ", 2)
            self.requests.append(Received(method, target, headers, body))
            self.arrived.set()
            if self.hold is not None:
                await self.hold.wait()
            writer.write(
                f"HTTP/1.1 {self.status} Status\r\nContent-Length: 0\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client gave up (a test closed the notifier mid-request)
        finally:
            writer.close()


@pytest.fixture
async def webhook_server() -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    receiver.port = server.sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        if receiver.hold is not None:
            receiver.hold.set()  # let a held handler finish instead of dying pending
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0)  # the released handlers write their answer and close


class Outcomes(list[tuple[str, bool]]):
    """An `on_sent` callback that keeps what it was told."""

    def __call__(self, channel: str, ok: bool) -> None:
        self.append((channel, ok))


@pytest.fixture
def outcomes() -> Outcomes:
    return Outcomes()


def smtp_channel(sink: SmtpSink, **options: Any) -> SmtpChannel:
    """A channel to `sink`, plain SMTP (the test server speaks no TLS)."""
    values: dict[str, Any] = {
        "hostname": "127.0.0.1",
        "port": sink.port,
        "sender": SENDER,
        "recipients": [ADMIN],
        "security": "none",
        "timeout": 5.0,
    }
    return SmtpChannel(**{**values, **options})


def webhook_channel(
    receiver: WebhookReceiver, *, secret: str | None = WEBHOOK_SECRET
) -> WebhookChannel:
    """A channel to `receiver`, signing with `secret`."""
    return WebhookChannel(receiver.url, secret=SecretStr(secret) if secret else None, timeout=5.0)


@pytest.fixture
async def make_notifier(
    clock: FakeClock, outcomes: Outcomes
) -> AsyncIterator[Callable[..., AlertNotifier]]:
    """Builds started notifiers on the fake clock, reporting to `outcomes`; closes them."""
    made: list[AlertNotifier] = []

    def make(*channels: Any, start: bool = True, **options: Any) -> AlertNotifier:
        values: dict[str, Any] = {"window": WINDOW, "clock": clock, "on_sent": outcomes}
        notifier = AlertNotifier(list(channels), **{**values, **options})
        if start:
            notifier.start()
        made.append(notifier)
        return notifier

    yield make
    for notifier in made:
        await notifier.aclose()


async def settle(notifier: AlertNotifier) -> None:
    """Wait (at most 5 s) until every queued alert was attempted on every channel."""
    await asyncio.wait_for(notifier.drain(), 5)
