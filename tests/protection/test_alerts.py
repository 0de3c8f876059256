"""Unexpected errors alert the admin: real SMTP (aiosmtpd) and a real webhook receiver."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
from fastapi import Header

from session_service.sessions.deps import CurrentSession
from tests.conftest import FakeClock
from tests.helpers import Running, assert_problem, create_session, holder
from tests.notify.conftest import SmtpSink, WebhookReceiver


@pytest.fixture
def settings_overrides(smtp_server: SmtpSink, webhook_server: WebhookReceiver) -> dict[str, object]:
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_server.port,
        "smtp_security": "none",
        "alert_email_to": ["admin@example.org"],
        "alert_webhook_url": webhook_server.url,
        "alert_window": 300,
    }


@pytest.fixture
def failing_routes(app: Running) -> None:
    async def explode(x_session_id: str | None = Header(default=None)) -> None:
        raise RuntimeError("internal detail: password=hunter2")

    async def explode_held(session: CurrentSession) -> None:
        """Fails after the holder's token was checked: the alert names the session."""
        raise RuntimeError("internal detail: password=hunter2")

    async def other(x_session_id: str | None = Header(default=None)) -> None:
        raise KeyError("missing")

    app.app.add_api_route("/test-explode", explode)
    app.app.add_api_route("/test-other", other)
    app.app.add_api_route("/test-explode-held", explode_held)


async def until(condition: Callable[[], bool], seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        await asyncio.sleep(0.01)


@pytest.mark.usefixtures("failing_routes")
class TestAlerts:
    async def test_a_500_alerts_by_email_and_webhook(
        self,
        client: httpx.AsyncClient,
        app: Running,
        smtp_server: SmtpSink,
        webhook_server: WebhookReceiver,
    ) -> None:
        session = await create_session(client)
        await client.post("/api/v1/session/validate", headers={"X-Session-ID": "bad"})
        response = await client.get(
            "/test-explode-held",
            headers={**holder(session), "X-Request-ID": "req-500-1"},
        )
        assert_problem(response, 500, "internal_error")
        await app.resources.notifier.drain()

        [mail] = smtp_server.messages()
        text = mail.get_content()
        assert "RuntimeError" in mail["Subject"]
        assert "req-500-1" in text
        assert session["id"] in text  # the public id names the session
        assert session["token"] not in text  # the secret never leaves in an alert
        assert "hunter2" not in text

        [hook] = webhook_server.requests
        payload = json.loads(hook.body)
        assert payload["request_id"] == "req-500-1"
        assert payload["session_id"] == session["id"]
        assert payload["summary"].startswith("RuntimeError at ")
        assert "GET /test-explode-held" in payload["summary"]
        assert payload["time"].startswith("2026-01-15T09:30")
        assert "session.created" in payload["recent_actions"]
        assert len(payload["recent_actions"]) <= 200
        assert "hunter2" not in hook.body.decode()
        assert session["token"] not in hook.body.decode()

        metrics = (await client.get("/metrics")).text
        assert 'session_service_alerts_total{channel="smtp",result="sent"} 1.0' in metrics
        assert 'session_service_alerts_total{channel="webhook",result="sent"} 1.0' in metrics

    async def test_a_burst_of_one_error_sends_one_message_distinct_errors_their_own(
        self,
        client: httpx.AsyncClient,
        app: Running,
        smtp_server: SmtpSink,
        webhook_server: WebhookReceiver,
    ) -> None:
        burst = await asyncio.gather(*(client.get("/test-explode") for _ in range(100)))
        assert {r.status_code for r in burst} == {500}
        await client.get("/test-other")
        await app.resources.notifier.drain()
        summaries = sorted(
            json.loads(r.body)["summary"].split(" at ")[0] for r in webhook_server.requests
        )
        assert summaries == ["KeyError", "RuntimeError"]
        assert len(smtp_server.messages()) == 2

    async def test_a_slow_receiver_never_slows_the_answer(
        self, client: httpx.AsyncClient, app: Running, webhook_server: WebhookReceiver
    ) -> None:
        webhook_server.hold = asyncio.Event()
        response = await client.get("/test-explode")
        assert response.status_code == 500
        await until(webhook_server.arrived.is_set)
        # The answer is out while the webhook call is still waiting on the receiver.
        assert len(webhook_server.requests) == 1
        webhook_server.hold.set()
        await app.resources.notifier.drain()

    async def test_the_window_allows_the_next_message_with_the_count(
        self,
        client: httpx.AsyncClient,
        app: Running,
        webhook_server: WebhookReceiver,
        clock: FakeClock,
    ) -> None:
        for _ in range(3):
            await client.get("/test-explode")
        clock.advance(timedelta(minutes=5))
        await client.get("/test-explode")
        await app.resources.notifier.drain()
        counts = [json.loads(r.body)["occurrences"] for r in webhook_server.requests]
        assert counts == [1, 3]


class TestNoChannels:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {}

    async def test_errors_are_answered_with_nothing_configured(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        async def explode() -> None:
            raise RuntimeError

        app.app.add_api_route("/test-explode", explode)
        assert_problem(await client.get("/test-explode"), 500, "internal_error")
        assert app.resources.notifier.enabled is False


@pytest.mark.usefixtures("failing_routes")
class TestAttribution:
    async def test_an_unchecked_header_names_no_session(
        self, client: httpx.AsyncClient, app: Running, webhook_server: WebhookReceiver
    ) -> None:
        session = await create_session(client)
        await client.get("/test-explode", headers=holder(session))
        await app.resources.notifier.drain()
        [hook] = webhook_server.requests
        payload = json.loads(hook.body)
        assert payload["session_id"] is None
        assert session["id"] not in hook.body.decode()
        assert session["token"] not in hook.body.decode()
